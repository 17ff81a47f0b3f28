"""The overview's traffic section: chart, failure reasons, top clients, failing networks,
unknown client_ids, per source, with a range switch and a source filter; empty states say
what to do next; htmx polls its tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.analytics.traffic import event, events_write

URL = reverse("dashboard:overview")
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def traffic(db):
    ago = NOW - timedelta(hours=2)
    events_write(
        *[event(ago, client_id="billing") for _ in range(5)],
        event(ago, client_id="billing", reason="bad_secret", ip="198.51.100.9"),
        event(ago, client_id="reports", reason="bad_secret", ip="198.51.100.10"),
        event(ago, client_id="reports", reason="invalid_scope"),
        event(ago, client_id="ghost", reason="unknown_client", source="okta", ip="192.0.2.5"),
        event(NOW - timedelta(days=3), client_id="old-job"),
    )


class TestTrafficSection:
    def test_it_shows_each_section_with_data(self, viewer_client, traffic):
        response = viewer_client.get(URL)
        traffic = response.context["traffic"]
        assert (traffic.requests, traffic.failures) == (9, 4)
        assert traffic.reasons == [("bad_secret", 2), ("invalid_scope", 1), ("unknown_client", 1)]
        assert [(c.client_id, c.requests) for c in traffic.top_requests][:2] == [
            ("billing", 6),
            ("reports", 2),
        ]
        assert [(c.client_id, c.failures) for c in traffic.top_failures] == [
            ("reports", 2),
            ("billing", 1),
            ("ghost", 1),
        ]
        assert [(n.network, n.failures) for n in traffic.failing_networks] == [
            ("198.51.100.0/24", 2),
            ("192.0.2.0/24", 1),
            ("203.0.113.0/24", 1),
        ]
        assert [(u.client_id, u.source) for u in traffic.unknown_clients] == [("ghost", "okta")]
        html = response.content.decode()
        for heading in (
            "Token traffic",
            "Failure reasons",
            "Top clients by requests",
            "Top clients by failures",
            "Top failing networks",
            "Unknown client_ids tried",
            "Secrets health",
        ):
            assert heading in html
        assert 'data-chart-url="/analytics/charts/traffic.json?range=24h"' in html
        assert "<summary>Table of the chart's data</summary>" in html

    def test_it_links_every_row_to_the_explorer(self, viewer_client, traffic):
        html = viewer_client.get(URL).content.decode()
        assert "/analytics/events/?from=" in html
        assert "&amp;outcome=failure&amp;reason=bad_secret" in html
        assert "&amp;ip=198.51.100.0%2F24&amp;source=keyward&amp;outcome=failure" in html
        assert "&amp;client_id=ghost&amp;source=okta&amp;reason=unknown_client" in html

    def test_it_switches_range_with_a_shareable_url(self, viewer_client, traffic):
        response = viewer_client.get(URL, {"range": "7d"})
        assert response.context["traffic"].requests == 10
        html = response.content.decode()
        assert 'href="/?range=7d" hx-get="/?range=7d"' in html
        assert 'aria-current="true" class="current">7 d<' in html
        assert viewer_client.get(URL, {"range": "1h"}).context["traffic"].requests == 0

    def test_it_filters_by_source_and_shows_each_source(self, viewer_client, traffic):
        everything = viewer_client.get(URL).context["traffic"]
        assert {s.source: s.requests for s in everything.sources} == {"keyward": 8, "okta": 1}
        assert {"keyward", "keycloak", "auth0", "okta"} <= set(everything.source_choices)
        okta = viewer_client.get(URL, {"source": "okta"}).context["traffic"]
        assert (okta.requests, okta.failures) == (1, 1)
        assert [c.client_id for c in okta.top_requests] == ["ghost"]

    def test_it_says_what_to_do_when_there_is_no_traffic(self, viewer_client):
        html = viewer_client.get(URL).content.decode()
        assert "No token requests last 24 hours." in html
        assert "bin/dev" in html and "manage.py ingest_logs" in html
        assert "docs/analytics.md" in html
        # Polls the whole section, so the chart appears once traffic arrives.
        assert 'id="traffic" aria-labelledby="traffic-heading" data-poll' in html

    def test_it_refuses_an_unknown_range(self, viewer_client):
        assert viewer_client.get(URL, {"range": "1y"}).status_code == 400
        assert viewer_client.get(URL, {"source": "a b"}).status_code == 400


class TestLiveRefresh:
    def test_it_polls_its_tables_every_30_seconds(self, viewer_client, traffic):
        html = viewer_client.get(URL, {"range": "7d"}).content.decode()
        assert (
            'id="traffic-tables" data-poll hx-get="/?range=7d" '
            'hx-trigger="every 30s, kw:visible from:document"'
        ) in html

    def test_it_answers_the_poll_with_the_tables_alone(self, viewer_client, traffic):
        response = viewer_client.get(
            URL, {"range": "7d"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="traffic-tables"
        )
        html = response.content.decode()
        assert html.lstrip().startswith('<div id="traffic-tables"')
        assert "Recent changes" not in html and "counts" not in response.context

    def test_it_answers_the_range_switch_with_the_section(self, viewer_client, traffic):
        response = viewer_client.get(
            URL, {"range": "1h"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="traffic"
        )
        assert response.content.decode().lstrip().startswith('<section id="traffic"')


class TestOverviewCache:
    def test_it_reads_the_rollups_once_per_30_seconds(self, viewer_client, traffic):
        def rollup_reads() -> int:
            with CaptureQueriesContext(connection) as queries:
                viewer_client.get(URL)
            return sum("analytics_traffic" in q["sql"] for q in queries.captured_queries)

        assert rollup_reads() > 0
        assert rollup_reads() == 0
