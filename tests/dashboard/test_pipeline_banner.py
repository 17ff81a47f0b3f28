"""The console banner admins see while the token-event pipeline has stalled (real Redis)."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from django.urls import reverse

from analytics.drain import token_events_drain
from tokens.buffer import (
    DRAIN_HEARTBEAT_KEY,
    EVENT_BUFFER_KEY,
    EVENT_PROCESSING_KEY,
    event_buffer_redis,
)
from tokens.pipeline import BEAT_HEARTBEAT_KEY, STATUS_CACHE_KEY, beat_heartbeat_record

pytestmark = pytest.mark.django_db(transaction=True)

URL = reverse("dashboard:overview")
BANNER = "Background processing has stalled."


@pytest.fixture
def pipeline(settings):
    if not settings.USE_REDIS:
        pytest.skip("needs REDIS_URL")
    redis = event_buffer_redis()
    keys = (EVENT_BUFFER_KEY, EVENT_PROCESSING_KEY, BEAT_HEARTBEAT_KEY, DRAIN_HEARTBEAT_KEY)
    redis.delete(*keys)
    beat_heartbeat_record()
    token_events_drain()
    yield redis
    redis.delete(*keys)


def beat_stops(redis, minutes_ago: int) -> None:
    redis.set(BEAT_HEARTBEAT_KEY, time.time() - minutes_ago * 60)


class TestPipelineBanner:
    def test_it_tells_admins_what_stalled_since_when_and_what_to_do(self, admin_client, pipeline):
        beat_stops(pipeline, minutes_ago=36)
        page = admin_client.get(URL).content.decode()
        assert BANNER in page
        assert "Celery beat has not sent a task since" in page
        assert "36 minutes ago" in page
        assert "celery -A keyward beat" in page

    def test_it_shows_on_every_console_page(self, admin_client, pipeline):
        beat_stops(pipeline, minutes_ago=5)
        assert BANNER in admin_client.get(reverse("clients:list")).content.decode()

    def test_it_is_not_shown_to_operators_and_viewers(
        self, operator_client, viewer_client, pipeline
    ):
        beat_stops(pipeline, minutes_ago=36)
        assert BANNER not in operator_client.get(URL).content.decode()
        assert BANNER not in viewer_client.get(URL).content.decode()

    def test_it_is_not_shown_while_the_pipeline_runs(self, admin_client, pipeline):
        assert BANNER not in admin_client.get(URL).content.decode()

    def test_it_goes_away_once_beat_runs_again(self, admin_client, pipeline):
        beat_stops(pipeline, minutes_ago=36)
        assert BANNER in admin_client.get(URL).content.decode()
        beat_heartbeat_record()
        # The status is cached for a few seconds; expire it instead of waiting.
        cache.delete(STATUS_CACHE_KEY)
        assert BANNER not in admin_client.get(URL).content.decode()

    def test_it_reuses_the_status_for_a_few_seconds(self, admin_client, pipeline):
        admin_client.get(URL)
        beat_stops(pipeline, minutes_ago=36)
        assert BANNER not in admin_client.get(URL).content.decode()
