"""The event pipeline end to end: a real Celery worker process on Redis drains the buffer
into the pytest PostgreSQL database, including a worker killed mid-batch."""

from __future__ import annotations

import time
import uuid

import pytest

from analytics.drain import DRAIN_LOCK_SECONDS
from analytics.models import TokenEvent
from analytics.tasks import drain_token_events
from tests.analytics.test_drain import make_event
from tests.processes import CeleryWorker
from tokens.buffer import (
    DRAIN_HEARTBEAT_KEY,
    EVENT_BUFFER_KEY,
    EVENT_PROCESSING_KEY,
    event_buffer_redis,
)
from tokens.pipeline import DRAIN_FALLBACK_CLAIM_KEY

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def buffer(settings):
    if not settings.USE_REDIS or settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        pytest.skip("needs REDIS_URL and PostgreSQL")
    redis = event_buffer_redis()
    keys = (EVENT_BUFFER_KEY, EVENT_PROCESSING_KEY, DRAIN_HEARTBEAT_KEY, DRAIN_FALLBACK_CLAIM_KEY)
    redis.delete(*keys, "celery")
    yield redis
    redis.delete(*keys)


@pytest.fixture
def start_worker(buffer, tmp_path):
    workers: list[CeleryWorker] = []

    def start(**env_overrides: str) -> CeleryWorker:
        workers.append(CeleryWorker(tmp_path, **env_overrides))
        return workers[-1]

    yield start
    for worker in workers:
        worker.kill()


def push_events(redis, count: int) -> set[uuid.UUID]:
    events = [make_event() for _ in range(count)]
    for start in range(0, count, 10_000):
        redis.rpush(EVENT_BUFFER_KEY, *[e.to_buffer() for e in events[start : start + 10_000]])
    return {uuid.UUID(event.id) for event in events}


def wait_for_rows(expected: int, timeout: float, nudge_every: float | None = None) -> float:
    """Seconds until TokenEvent holds `expected` rows; optionally re-sends the task (as beat
    would) while waiting."""
    started = last_nudge = time.monotonic()
    while TokenEvent.objects.count() < expected:
        now = time.monotonic()
        if now - started > timeout:
            pytest.fail(f"{TokenEvent.objects.count()} of {expected} rows after {timeout} s")
        if nudge_every and now - last_nudge > nudge_every:
            drain_token_events.delay()
            last_nudge = now
        time.sleep(0.05)
    return time.monotonic() - started


class TestEventPipelineWorker:
    def test_it_moves_5000_events_into_the_table_within_10_seconds(self, buffer, start_worker):
        start_worker()
        ids = push_events(buffer, 5_000)
        drain_token_events.delay()
        elapsed = wait_for_rows(5_000, timeout=10)
        assert set(TokenEvent.objects.values_list("id", flat=True)) == ids
        assert buffer.llen(EVENT_BUFFER_KEY) == 0
        print(f"5,000 events in the table {elapsed:.2f} s after the task was sent")

    def test_it_loses_and_duplicates_nothing_when_the_worker_is_killed_mid_batch(
        self, buffer, start_worker
    ):
        ids = push_events(buffer, 100_000)
        # Kill once at least one batch committed while another is claimed but unacknowledged.
        # The kill can land in the instant between an ack and the next claim; then the
        # interesting state was missed, so a fresh worker carries on and is killed again.
        for _attempt in range(5):
            worker = start_worker()
            drain_token_events.delay()
            deadline = time.monotonic() + DRAIN_LOCK_SECONDS + 30
            last_nudge = time.monotonic()
            while not (TokenEvent.objects.exists() and buffer.llen(EVENT_PROCESSING_KEY)):
                assert time.monotonic() < deadline, worker.log()
                if time.monotonic() - last_nudge > 1:  # a killed run's lock may still hold
                    drain_token_events.delay()
                    last_nudge = time.monotonic()
                time.sleep(0.005)
            worker.kill()
            rows_at_kill = TokenEvent.objects.count()
            in_flight = buffer.llen(EVENT_PROCESSING_KEY)
            if in_flight:
                break
        assert 0 < rows_at_kill < len(ids)
        assert in_flight > 0

        start_worker()
        # The dead worker's drain lock expires after DRAIN_LOCK_SECONDS; until then runs
        # return at once, so keep sending the task as beat would.
        drain_token_events.delay()
        wait_for_rows(len(ids), timeout=DRAIN_LOCK_SECONDS + 30, nudge_every=1)
        assert TokenEvent.objects.count() == len(ids)
        assert set(TokenEvent.objects.values_list("id", flat=True)) == ids
        assert buffer.llen(EVENT_BUFFER_KEY) == 0
        # The processing list is acknowledged only after commit; wait for the last ack.
        deadline = time.monotonic() + 5
        while buffer.llen(EVENT_PROCESSING_KEY) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert buffer.llen(EVENT_PROCESSING_KEY) == 0
        print(f"killed with {rows_at_kill} rows written and {in_flight} events in flight")

    def test_it_drains_on_its_own_when_beat_sends_nothing(self, buffer, start_worker):
        # No beat and no task sent by the test: only the worker's fallback can move these.
        worker = start_worker(KEYWARD_DRAIN_FALLBACK_SECONDS="1")
        ids = push_events(buffer, 500)
        wait_for_rows(500, timeout=15)
        assert set(TokenEvent.objects.values_list("id", flat=True)) == ids
        assert buffer.llen(EVENT_BUFFER_KEY) == 0
        assert "no drain ran lately" in worker.log()

    def test_it_sends_no_fallback_drain_while_drains_run(self, buffer, start_worker):
        buffer.set(DRAIN_HEARTBEAT_KEY, time.time() + 3600)  # a drain "just ran", for an hour
        worker = start_worker(KEYWARD_DRAIN_FALLBACK_SECONDS="1")
        push_events(buffer, 10)
        time.sleep(3)
        assert TokenEvent.objects.count() == 0
        assert "no drain ran lately" not in worker.log()
