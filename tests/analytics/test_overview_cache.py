"""The overview's cache warmer: beat computes every range's numbers before a viewer asks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from analytics.activity import overview_cache_warm, traffic_overview
from analytics.charts import RANGES
from tests.analytics.traffic import event, events_write

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC)


class TestOverviewCacheWarm:
    def test_it_computes_every_range_before_a_viewer_asks(self, django_assert_num_queries):
        events_write(event(NOW - timedelta(hours=2)), event(NOW - timedelta(days=3)))
        overview_cache_warm(now=NOW)
        with django_assert_num_queries(0):
            requests = [
                traffic_overview(range_key=key, source=None, now=NOW).requests for key in RANGES
            ]
        assert requests == [0, 1, 2, 2]

    def test_it_replaces_what_the_cache_holds(self):
        assert traffic_overview(range_key="24h", source=None, now=NOW).requests == 0
        events_write(event(NOW - timedelta(hours=2)))
        overview_cache_warm(now=NOW)
        assert traffic_overview(range_key="24h", source=None, now=NOW).requests == 1

    def test_beat_runs_it_more_often_than_the_cache_expires(self, settings):
        entry = settings.CELERY_BEAT_SCHEDULE["warm-overview-cache"]
        assert entry["task"] == "analytics.tasks.warm_overview_cache"
        assert entry["schedule"] < 30
