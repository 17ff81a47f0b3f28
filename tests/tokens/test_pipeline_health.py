"""Pipeline health on real Redis: /healthz, /healthz/web and `manage.py pipeline_health`
report beat gone silent, the drain not running and events waiting too long."""

from __future__ import annotations

import time

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from analytics.drain import token_events_drain
from tests.analytics.test_drain import make_event
from tokens.buffer import (
    DRAIN_HEARTBEAT_KEY,
    EVENT_BUFFER_KEY,
    EVENT_PROCESSING_KEY,
    event_buffer_redis,
)
from tokens.pipeline import BEAT_HEARTBEAT_KEY, beat_heartbeat_record, drain_fallback_claim

pytestmark = pytest.mark.django_db(transaction=True)

HEALTHZ = reverse("healthz")
HEALTHZ_WEB = reverse("healthz_web")


@pytest.fixture
def buffer(settings):
    if not settings.USE_REDIS:
        pytest.skip("needs REDIS_URL")
    redis = event_buffer_redis()
    redis.delete(EVENT_BUFFER_KEY, EVENT_PROCESSING_KEY, BEAT_HEARTBEAT_KEY, DRAIN_HEARTBEAT_KEY)
    yield redis
    redis.delete(EVENT_BUFFER_KEY, EVENT_PROCESSING_KEY, BEAT_HEARTBEAT_KEY, DRAIN_HEARTBEAT_KEY)


@pytest.fixture
def running(buffer):
    """Beat and the drain have just run, and nothing waits."""
    beat_heartbeat_record()
    token_events_drain()
    return buffer


def silent_since(redis, key: str, seconds_ago: float) -> None:
    redis.set(key, time.time() - seconds_ago)


class TestHealthz:
    def test_it_is_ok_while_beat_and_the_drain_run_and_nothing_waits(self, client, running):
        response = client.get(HEALTHZ)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    def test_it_is_degraded_when_beat_has_never_sent_a_task(self, client, buffer):
        token_events_drain()
        response = client.get(HEALTHZ)
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "degraded"
        assert len(body["reasons"]) == 1
        assert "Celery beat has not sent any task" in body["reasons"][0]
        assert "celery -A keyward beat" in body["reasons"][0]

    def test_it_is_degraded_when_beat_went_silent(self, client, running):
        silent_since(running, BEAT_HEARTBEAT_KEY, 600)
        reasons = client.get(HEALTHZ).json()["reasons"]
        assert len(reasons) == 1
        assert "Celery beat has not sent a task since" in reasons[0]
        assert "10 minutes ago" in reasons[0]

    def test_it_is_ok_when_beat_was_heard_within_the_threshold(self, client, running, settings):
        settings.KEYWARD_PIPELINE_STALE_SECONDS = 900
        silent_since(running, BEAT_HEARTBEAT_KEY, 600)
        assert client.get(HEALTHZ).status_code == 200

    def test_it_is_degraded_when_no_drain_ran_lately(self, client, running):
        silent_since(running, DRAIN_HEARTBEAT_KEY, 120)
        reasons = client.get(HEALTHZ).json()["reasons"]
        assert len(reasons) == 1
        assert "No Celery worker has run the token-event drain since" in reasons[0]
        assert "celery -A keyward worker" in reasons[0]

    def test_it_is_degraded_when_the_oldest_waiting_event_is_too_old(self, client, running):
        old = make_event(occurred_at=time.time() - 36 * 60)
        running.rpush(EVENT_BUFFER_KEY, old.to_buffer(), make_event().to_buffer())
        response = client.get(HEALTHZ)
        assert response.status_code == 503
        [reason] = response.json()["reasons"]
        assert "2 token events are waiting in Redis" in reason
        assert "36 minutes ago" in reason

    def test_it_reads_the_age_of_a_batch_left_in_the_processing_list(self, client, running):
        running.rpush(EVENT_PROCESSING_KEY, make_event(occurred_at=time.time() - 300).to_buffer())
        [reason] = client.get(HEALTHZ).json()["reasons"]
        assert "the oldest arrived" in reason

    def test_it_ignores_events_younger_than_the_threshold(self, client, running):
        running.rpush(EVENT_BUFFER_KEY, make_event(occurred_at=time.time() - 5).to_buffer())
        assert client.get(HEALTHZ).status_code == 200

    def test_it_is_ok_again_once_beat_and_the_drain_run(self, client, buffer):
        buffer.rpush(EVENT_BUFFER_KEY, make_event(occurred_at=time.time() - 600).to_buffer())
        silent_since(buffer, BEAT_HEARTBEAT_KEY, 600)
        assert len(client.get(HEALTHZ).json()["reasons"]) == 3
        token_events_drain()
        beat_heartbeat_record()
        assert client.get(HEALTHZ).json() == {"status": "ok"}

    def test_it_is_degraded_when_redis_cannot_be_reached(self, client, buffer, settings):
        settings.REDIS_URL = "redis://127.0.0.1:1/0"
        [reason] = client.get(HEALTHZ).json()["reasons"]
        assert reason.startswith("Redis cannot be reached")

    def test_it_reports_nothing_about_the_pipeline_in_embedded_mode(self, client, settings):
        settings.USE_REDIS = False
        assert client.get(HEALTHZ).json() == {"status": "ok"}


class TestHealthzWeb:
    def test_it_stays_ok_while_the_pipeline_is_degraded(self, client, buffer):
        assert client.get(HEALTHZ).status_code == 503
        response = client.get(HEALTHZ_WEB)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}


class TestPipelineHealthCommand:
    def test_it_prints_ok_while_the_pipeline_runs(self, running, capsys):
        call_command("pipeline_health")
        assert capsys.readouterr().out.strip() == "ok"

    def test_it_fails_with_the_reason_when_beat_is_silent(self, running):
        silent_since(running, BEAT_HEARTBEAT_KEY, 600)
        with pytest.raises(CommandError, match="Celery beat has not sent a task since"):
            call_command("pipeline_health")

    def test_it_checks_only_what_it_is_asked_to(self, running, capsys):
        silent_since(running, DRAIN_HEARTBEAT_KEY, 600)
        call_command("pipeline_health", "--check", "beat")
        assert capsys.readouterr().out.strip() == "ok"
        with pytest.raises(CommandError, match="No Celery worker has run the token-event drain"):
            call_command("pipeline_health", "--check", "drain", "--check", "backlog")


class TestDrainFallbackClaim:
    def test_it_claims_once_per_period_while_no_drain_runs(self, buffer, settings):
        settings.KEYWARD_DRAIN_FALLBACK_SECONDS = 0.3
        assert drain_fallback_claim()
        assert not drain_fallback_claim()
        time.sleep(0.35)
        assert drain_fallback_claim()

    def test_it_does_not_claim_after_a_recent_drain(self, buffer):
        token_events_drain()
        assert not drain_fallback_claim()
