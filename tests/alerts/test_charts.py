"""The investigation page's traffic chart: its JSON (series, threshold, marker, explorer
links) for a client and for a network subject, and the page's chart and table."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from alerts.evaluation import detections_evaluate
from alerts.models import Alert
from analytics.rollups import rollups_rebuild

from .conftest import NOW, Reason, traffic


def with_rollups() -> None:
    """The test events were written straight to the table: count them into the rollups,
    which the chart reads."""
    rollups_rebuild(start=NOW - timedelta(days=1), end=NOW + timedelta(hours=1))


@pytest.fixture
def brute_forced(make_client, clock):
    client, _ = make_client("Billing", environment="production")
    traffic(
        10,
        client_id=client.client_id,
        spread=timedelta(minutes=50),
        end=NOW - timedelta(minutes=10),
    )
    traffic(30, client_id=client.client_id, reason=Reason.BAD_SECRET, ip="203.0.113.5")
    with_rollups()
    detections_evaluate()
    return client, Alert.objects.get(rule="brute_force")


@pytest.fixture
def stuffed(db, clock):
    for n in range(12):
        traffic(
            2, client_id=f"guess-{n}", reason=Reason.UNKNOWN_CLIENT, ip="198.18.0.77", known=False
        )
    with_rollups()
    detections_evaluate()
    return Alert.objects.get(rule="credential_stuffing")


def chart(browser, alert: Alert, width: int = 800):
    return browser.get(reverse("alerts:traffic_json", args=[alert.pk]), {"width": width})


class TestClientChart:
    def test_it_draws_the_counted_requests_against_the_threshold(self, brute_forced, viewer_client):
        client, alert = brute_forced
        data = chart(viewer_client, alert).json()
        assert data["step_seconds"] == 300  # the rule's window: each bar is what it counts
        assert data["threshold"] == {"value": 20, "label": "Threshold: 20 per 5 min"}
        assert sum(data["counted"]) == 30 and max(data["counted"]) >= 20
        assert sum(data["requests"]) == 40 and sum(data["failures"]) == 30
        assert data["counted_filter"] == {"reason": "bad_secret"}
        assert data["marker"]["x"] == int(alert.first_seen_at.timestamp())
        assert data["explore"].endswith(f"?client_id={client.client_id}")

    def test_it_spans_an_hour_before_the_first_event_to_now(self, brute_forced, viewer_client):
        _client, alert = brute_forced
        data = chart(viewer_client, alert).json()
        assert data["x"][0] <= (alert.first_seen_at - timedelta(hours=1)).timestamp()
        assert data["x"][-1] + data["step_seconds"] >= NOW.timestamp()

    def test_a_narrow_chart_has_longer_steps_and_no_threshold(self, brute_forced, viewer_client):
        _client, alert = brute_forced
        data = chart(viewer_client, alert, width=10).json()
        assert data["step_seconds"] > 300 and data["threshold"] is None
        assert sum(data["counted"]) == 30

    def test_a_rule_that_counts_no_requests_draws_no_threshold(
        self, make_client, clock, viewer_client
    ):
        client, _ = make_client("Probe")
        for scope in ("admin", "users:write", "keys:rotate"):
            traffic(1, client_id=client.client_id, reason=Reason.INVALID_SCOPE, scopes=scope)
        with_rollups()
        detections_evaluate()
        data = chart(viewer_client, Alert.objects.get(rule="scope_probing")).json()
        assert data["threshold"] is None and "counted" not in data and data["step_seconds"] == 60

    def test_an_alert_of_a_rule_no_longer_in_the_catalogue_still_charts(
        self, brute_forced, viewer_client
    ):
        _client, alert = brute_forced
        Alert.objects.filter(pk=alert.pk).update(rule="retired_rule", evidence={})
        data = chart(viewer_client, alert).json()
        assert data["step_seconds"] == 60 and sum(data["requests"]) == 40
        assert "counted" not in data and data["threshold"] is None

    def test_a_bad_width_is_a_clear_400(self, brute_forced, viewer_client):
        _client, alert = brute_forced
        response = chart(viewer_client, alert, width="wide")
        assert response.status_code == 400 and "width" in response.json()["detail"]

    def test_anonymous_visitors_are_sent_to_log_in(self, brute_forced, anonymous_client):
        assert chart(anonymous_client, brute_forced[1]).status_code == 302


class TestNetworkChart:
    def test_it_draws_the_networks_failures_per_hour(self, stuffed, viewer_client):
        data = chart(viewer_client, stuffed).json()
        assert "requests" not in data and data["threshold"] is None
        assert data["step_seconds"] == 3600 and sum(data["failures"]) == 24
        assert data["explore"].endswith("?ip=198.18.0.0%2F24")


class TestInvestigationPage:
    def test_it_has_the_chart_and_its_table(self, brute_forced, viewer_client):
        _client, alert = brute_forced
        page = viewer_client.get(reverse("alerts:detail", args=[alert.pk])).content.decode()
        assert f'data-chart-url="{reverse("alerts:traffic_json", args=[alert.pk])}"' in page
        assert "uPlot.iife.min.js" in page and "threshold 20" in page
        assert "reason=bad_secret" in page  # a table cell links to the counted events

    def test_a_network_alert_shows_the_networks_failures(self, stuffed, viewer_client):
        page = viewer_client.get(reverse("alerts:detail", args=[stuffed.pk])).content.decode()
        assert "Failed requests from 198.18.0.0/24" in page
