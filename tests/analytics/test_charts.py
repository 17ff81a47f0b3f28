"""The chart data endpoint: downsampled to the width asked for, sums equal to the rollups,
role-checked, and a clear 400 for parameters it cannot use."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Sum
from django.urls import reverse

from analytics.charts import MAX_POINTS, RANGES, window_for
from analytics.models import TrafficHour, TrafficMinute
from tests.analytics.traffic import event, events_write

pytestmark = pytest.mark.django_db

URL = reverse("analytics:traffic_json")
NOW = datetime.now(UTC)


@pytest.fixture
def month_of_traffic():
    """About 600 events spread over 30 days, from two sources, a sixth of them failures."""
    rng = random.Random(11)
    records = []
    for _ in range(600):
        at = NOW - timedelta(seconds=rng.uniform(0, 30 * 86400))
        reason = rng.choice(["ok"] * 5 + ["bad_secret"])
        source = rng.choice(["keyward", "keyward", "okta"])
        records.append(event(at, reason=reason, source=source, client_id=rng.choice("abc")))
    # Several in the last hour, so the 1 h range has points to sum.
    records += [event(NOW - timedelta(minutes=m)) for m in range(1, 30, 3)]
    events_write(*records)


def rollup_total(model, window, **filters) -> dict:
    rows = model.objects.filter(bucket__gte=window.start, bucket__lt=window.end, **filters)
    return {
        "requests": rows.aggregate(n=Sum("count", default=0))["n"],
        "failures": rows.filter(outcome="failure").aggregate(n=Sum("count", default=0))["n"],
    }


class TestTrafficJson:
    @pytest.mark.parametrize("range_key", list(RANGES))
    @pytest.mark.parametrize("width", [2, 37, 169, 800, 5000])
    def test_it_sends_no_more_points_than_pixels(
        self, viewer_client, month_of_traffic, range_key, width
    ):
        data = viewer_client.get(URL, {"range": range_key, "width": width}).json()
        assert 2 <= len(data["x"]) <= min(width, MAX_POINTS)
        assert len(data["x"]) == len(data["requests"]) == len(data["failures"])
        steps = {b - a for a, b in zip(data["x"], data["x"][1:], strict=False)}
        assert steps == {data["step_seconds"]}

    @pytest.mark.parametrize(
        ("range_key", "model"),
        [("1h", TrafficMinute), ("24h", TrafficMinute), ("7d", TrafficHour), ("30d", TrafficHour)],
    )
    def test_its_buckets_sum_to_the_rollup_totals(
        self, viewer_client, month_of_traffic, range_key, model
    ):
        data = viewer_client.get(URL, {"range": range_key, "width": 300}).json()
        window = window_for(range_key, points=300)
        assert data["totals"] == rollup_total(model, window)
        assert sum(data["requests"]) == data["totals"]["requests"] > 0
        assert sum(data["failures"]) == data["totals"]["failures"]

    def test_it_reads_hours_beyond_two_days_and_minutes_below(self):
        assert window_for("24h", points=1440).step == timedelta(minutes=1)
        assert window_for("7d", points=5000).step == timedelta(hours=1)
        assert window_for("30d", points=100).step == timedelta(hours=12)

    def test_it_filters_by_source_and_client(self, viewer_client, month_of_traffic):
        window = window_for("30d", points=200)
        data = viewer_client.get(
            URL, {"range": "30d", "width": 200, "source": "okta", "client_id": "a"}
        ).json()
        assert data["totals"] == rollup_total(TrafficHour, window, source="okta", client_id="a")
        assert data["explore"] == "/analytics/events/?client_id=a&source=okta"

    def test_it_labels_the_unit_of_its_y_axis(self, viewer_client, month_of_traffic):
        data = viewer_client.get(URL, {"range": "24h", "width": 100}).json()
        assert data["unit"] == "requests per 15 min"
        assert data["step_seconds"] == 900

    def test_it_answers_zeros_without_events(self, viewer_client):
        data = viewer_client.get(URL, {"range": "1h", "width": 60}).json()
        assert set(data["requests"]) == {0}
        assert data["totals"] == {"requests": 0, "failures": 0}

    @pytest.mark.parametrize(
        ("params", "detail"),
        [
            ({"range": "2h"}, "range must be one of 1h, 24h, 7d, 30d"),
            ({"width": "wide"}, "width must be a whole number of pixels"),
            ({"width": "-5"}, "width must be a whole number of pixels"),
            ({"width": "9" * 20}, "width must be a whole number of pixels"),
            ({"source": "no such; source"}, "source must be a short name such as keyward or okta"),
            ({"client_id": "x" * 201}, "client_id is too long"),
        ],
    )
    def test_it_refuses_bad_parameters_with_400(self, viewer_client, params, detail):
        response = viewer_client.get(URL, params)
        assert response.status_code == 400
        assert response.json() == {"error": "invalid_request", "detail": detail}

    def test_it_sends_anonymous_visitors_to_log_in(self, anonymous_client):
        response = anonymous_client.get(URL)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))

    def test_it_is_not_cached(self, viewer_client):
        assert viewer_client.get(URL)["Cache-Control"].startswith("no-store")


class TestWindow:
    def test_it_aligns_buckets_so_a_refresh_keeps_them(self):
        earlier = window_for("24h", points=800, now=NOW)
        later = window_for("24h", points=800, now=NOW + timedelta(minutes=1))
        assert earlier.step == later.step == timedelta(minutes=2)
        assert (later.start - earlier.start) % earlier.step == timedelta(0)
        assert earlier.start.timestamp() % earlier.step.total_seconds() == 0
