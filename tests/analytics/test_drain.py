"""The token-event drain (analytics/drain.py) and the store behind it, against real Redis
and PostgreSQL.

Tests are transactional: the drain acknowledges only after a real commit, and refuses to
run inside a transaction (atomic(durable=True)).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import DatabaseError, DataError, connection

from analytics import store
from analytics.drain import token_events_drain
from analytics.models import TokenEvent
from analytics.store import record_as_model, token_events_write
from analytics.tasks import drain_token_events
from audit.events import TokenEventRecord
from clients.models import Client, ClientSecret
from tokens.buffer import (
    EVENT_BUFFER_KEY,
    EVENT_DRAIN_LOCK_KEY,
    EVENT_PROCESSING_KEY,
    event_buffer_redis,
)

pytestmark = pytest.mark.django_db(transaction=True)


def make_event(**fields) -> TokenEventRecord:
    """A failed token request of an unknown client; `fields` override."""
    defaults = {
        "id": uuid.uuid4().hex,
        "occurred_at": time.time(),
        "endpoint": TokenEvent.Endpoint.TOKEN,
        "client_id": "unknown-client",
        "outcome": TokenEvent.Outcome.FAILURE,
        "reason": TokenEvent.Reason.UNKNOWN_CLIENT,
        "source_ip": "203.0.113.7",
        "user_agent": "curl/8.5",
        "scopes_requested": "orders:read",
        "status_code": 401,
        "duration_ms": 1.5,
    }
    return TokenEventRecord(**(defaults | fields))


def success_event(
    client: Client, secret: ClientSecret, at: datetime, ip: str, **fields
) -> TokenEventRecord:
    return make_event(
        occurred_at=at.timestamp(),
        client_id=client.client_id,
        client_known=True,
        secret_id=secret.pk,
        outcome="success",
        reason="ok",
        source_ip=ip,
        scopes_granted="orders:read",
        jti=uuid.uuid4().hex,
        status_code=200,
        **fields,
    )


@pytest.fixture
def buffer(settings):
    """The Redis event buffer, emptied; push(*items) appends records (to_buffer()) or raw
    items (str or bytes)."""
    if not settings.USE_REDIS:
        pytest.skip("needs REDIS_URL")
    redis = event_buffer_redis()
    redis.delete(EVENT_BUFFER_KEY, EVENT_PROCESSING_KEY, EVENT_DRAIN_LOCK_KEY)

    class Buffer:
        client = redis

        @staticmethod
        def push(*items) -> None:
            encoded = [i if isinstance(i, str | bytes) else i.to_buffer() for i in items]
            for start in range(0, len(encoded), 10_000):
                redis.rpush(EVENT_BUFFER_KEY, *encoded[start : start + 10_000])

        @staticmethod
        def lengths() -> tuple[int, int]:
            return redis.llen(EVENT_BUFFER_KEY), redis.llen(EVENT_PROCESSING_KEY)

    yield Buffer
    redis.delete(EVENT_BUFFER_KEY, EVENT_PROCESSING_KEY, EVENT_DRAIN_LOCK_KEY)


def without(event: TokenEventRecord, name: str) -> str:
    """The event as JSON without one key."""
    return json.dumps({key: value for key, value in vars(event).items() if key != name})


class TestTokenEventsDrain:
    def test_it_writes_every_field(self, buffer):
        event = make_event(secret_id=42, jti="abc", user_agent="x" * 400)
        buffer.push(event)
        assert token_events_drain() == 1
        row = TokenEvent.objects.get()
        assert row.id == uuid.UUID(event.id)
        assert row.occurred_at == datetime.fromtimestamp(event.occurred_at, tz=UTC)
        assert (row.endpoint, row.client_id, row.client_known, row.secret_id) == (
            "token",
            "unknown-client",
            False,
            42,
        )
        assert (row.outcome, row.reason, row.status_code, row.duration_ms) == (
            "failure",
            "unknown_client",
            401,
            1.5,
        )
        assert (row.source_ip, row.scopes_requested) == ("203.0.113.7", "orders:read")
        assert row.jti == "abc"
        assert row.user_agent == "x" * 300
        assert buffer.lengths() == (0, 0)

    def test_it_is_idempotent_by_event_id(self, buffer):
        event = make_event()
        buffer.push(event, event)
        assert token_events_drain() == 1
        buffer.push(event)
        assert token_events_drain() == 0
        assert TokenEvent.objects.count() == 1
        assert buffer.lengths() == (0, 0)

    def test_it_drains_in_batches(self, buffer):
        events = [make_event() for _ in range(2_500)]
        buffer.push(*events)
        assert token_events_drain(batch_size=1_000, max_batches=2) == 2_000
        assert buffer.lengths() == (500, 0)
        assert token_events_drain(batch_size=1_000) == 500
        assert set(TokenEvent.objects.values_list("id", flat=True)) == {
            uuid.UUID(event.id) for event in events
        }

    def test_it_skips_malformed_items_without_blocking_the_queue(self, buffer, caplog):
        good = [make_event(), make_event()]
        buffer.push(
            good[0],
            "{not json",
            "[1, 2]",
            without(make_event(), "outcome"),
            make_event(id="not-a-uuid"),
            make_event(id=5),
            make_event(source_ip="999.1.1.1"),
            make_event(status_code="200"),
            make_event(endpoint="x" * 40),
            make_event(secret_id=True),
            make_event(occurred_at=1e20),
            make_event(client_id="nul\x00byte"),
            good[1],
        )
        assert token_events_drain() == 3
        assert buffer.lengths() == (0, 0)
        assert TokenEvent.objects.filter(client_id="nulbyte").exists()
        assert "skipping malformed item" in caplog.text

    def test_it_cleans_strings_postgresql_cannot_store(self, buffer):
        # json.dumps writes the lone surrogate as the (valid JSON) escape \ud800, which
        # orjson cannot encode.
        buffer.push(
            json.dumps(vars(make_event(user_agent="a\ud800b"))),
            json.dumps(vars(make_event(reason="\ud800"))),
        )
        assert token_events_drain() == 1
        assert TokenEvent.objects.get().user_agent == "a?b"

    def test_it_drops_an_item_the_database_refuses_and_keeps_the_rest(self, buffer, monkeypatch):
        if connection.vendor != "postgresql":
            pytest.skip("fakes a refusal of the PostgreSQL COPY path")
        events = [make_event() for _ in range(5)]
        poison = events[2].id
        real_copy = store._records_copy

        def refusing_copy(records):
            if any(record.id == poison for record in records):
                raise DataError("value out of range")
            return real_copy(records)

        monkeypatch.setattr(store, "_records_copy", refusing_copy)
        buffer.push(*events)
        assert token_events_drain() == 4
        assert not TokenEvent.objects.filter(id=poison).exists()
        assert buffer.lengths() == (0, 0)

    def test_it_is_a_no_op_in_embedded_mode(self, buffer, settings):
        buffer.push(make_event())
        settings.USE_REDIS = False
        assert token_events_drain() == 0
        assert buffer.lengths() == (1, 0)

    def test_it_returns_zero_while_another_drain_holds_the_lock(self, buffer):
        buffer.push(make_event())
        lock = buffer.client.lock(EVENT_DRAIN_LOCK_KEY, timeout=5)
        assert lock.acquire(blocking=False)
        try:
            assert token_events_drain() == 0
            assert buffer.lengths() == (1, 0)
        finally:
            lock.release()
        assert token_events_drain() == 1


class TestLastUsed:
    def test_it_moves_secret_and_client_last_used_to_the_latest_success(self, buffer, make_client):
        client, _ = make_client()
        secret = client.secrets.get()
        now = datetime.now(UTC).replace(microsecond=0)
        buffer.push(
            success_event(client, secret, now - timedelta(minutes=5), "198.51.100.1"),
            success_event(client, secret, now - timedelta(minutes=1), "198.51.100.2"),
            success_event(client, secret, now - timedelta(minutes=3), "198.51.100.3"),
            # Failures never count, even when later.
            make_event(
                client_id=client.client_id,
                client_known=True,
                secret_id=secret.pk,
                reason="ip_not_allowed",
                occurred_at=now.timestamp(),
                source_ip="192.0.2.9",
            ),
        )
        token_events_drain()
        secret.refresh_from_db()
        client.refresh_from_db()
        assert secret.last_used_at == now - timedelta(minutes=1)
        assert secret.last_used_ip == "198.51.100.2"
        assert client.last_used_at == now - timedelta(minutes=1)

    def test_it_never_moves_last_used_backwards(self, buffer, make_client):
        client, _ = make_client()
        secret = client.secrets.get()
        now = datetime.now(UTC).replace(microsecond=0)
        buffer.push(success_event(client, secret, now, "198.51.100.1"))
        token_events_drain()
        # An older batch arriving late (e.g. from the Redis-down fallback) changes nothing.
        buffer.push(success_event(client, secret, now - timedelta(hours=1), "198.51.100.9"))
        token_events_drain()
        secret.refresh_from_db()
        client.refresh_from_db()
        assert (secret.last_used_at, secret.last_used_ip) == (now, "198.51.100.1")
        assert client.last_used_at == now

    def test_it_updates_clients_only_from_successful_token_requests(self, buffer, make_client):
        client, _ = make_client()
        secret = client.secrets.get()
        now = datetime.now(UTC).replace(microsecond=0)
        buffer.push(success_event(client, secret, now, "198.51.100.1", endpoint="introspect"))
        token_events_drain()
        secret.refresh_from_db()
        client.refresh_from_db()
        assert secret.last_used_at == now
        assert client.last_used_at is None

    def test_it_updates_last_used_in_the_direct_write_too(self, make_client):
        client, _ = make_client()
        secret = client.secrets.get()
        now = datetime.now(UTC).replace(microsecond=0)
        event = success_event(client, secret, now, "2001:db8::1")
        token_events_write([event, event])
        secret.refresh_from_db()
        assert TokenEvent.objects.count() == 1
        assert (secret.last_used_at, secret.last_used_ip) == (now, "2001:db8::1")
        assert Client.objects.get(pk=client.pk).last_used_at == now


class TestCrashSafety:
    def test_it_ingests_items_a_killed_run_left_in_the_processing_list(self, buffer):
        leftover = [make_event() for _ in range(3)]
        fresh = make_event()
        # A killed run: its batch was moved to the processing list and never acknowledged,
        # and it may have committed part of it already (it did: the first event).
        buffer.client.rpush(EVENT_PROCESSING_KEY, *[e.to_buffer() for e in leftover])
        record_as_model(leftover[0]).save(force_insert=True)
        buffer.push(fresh)
        assert token_events_drain() == 3
        assert buffer.lengths() == (0, 0)
        assert TokenEvent.objects.count() == 4

    def test_it_acknowledges_only_after_commit(self, buffer, monkeypatch):
        events = [make_event() for _ in range(10)]
        buffer.push(*events)

        def fail():
            raise DatabaseError("connection lost mid-batch")

        monkeypatch.setattr(store, "_last_used_update_sql", lambda cursor: fail())
        monkeypatch.setattr(store, "_last_used_update_orm", lambda records: fail())
        with pytest.raises(DatabaseError):
            token_events_drain()
        # Rolled back, and the batch is still claimed, not lost.
        assert TokenEvent.objects.count() == 0
        assert buffer.lengths() == (0, 10)
        monkeypatch.undo()
        assert token_events_drain() == 10
        assert buffer.lengths() == (0, 0)

    def test_it_refuses_to_run_inside_a_transaction(self, buffer):
        from django.db import transaction

        buffer.push(make_event())
        with pytest.raises(RuntimeError), transaction.atomic():
            token_events_drain()
        assert buffer.lengths() == (0, 1)


class TestDrainTokenEventsTask:
    def test_it_calls_the_drain(self, buffer):
        buffer.push(make_event(), make_event())
        drain_token_events.apply()
        assert TokenEvent.objects.count() == 2

    def test_it_acks_late_and_has_time_limits(self):
        assert drain_token_events.acks_late is True
        assert drain_token_events.ignore_result is True
        assert 0 < drain_token_events.soft_time_limit < drain_token_events.time_limit

    def test_beat_sends_it(self, settings):
        tasks = [entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()]
        assert "tokens.tasks.drain_token_events" in tasks


class TestDrainRate:
    def test_it_ingests_50k_events_in_under_20_seconds(self, buffer, capsys):
        """A guard against gross regressions, not a benchmark (bin/bench-ingest is). The
        store maintains nine indexes and the rollups in the same transaction: 3–8 s here
        on a quiet machine, 11–13 s with the 2 cores shared at load average 8."""
        if connection.vendor != "postgresql":
            pytest.skip("the drain's database is PostgreSQL; SQLite means embedded mode, no drain")
        events = [make_event() for _ in range(50_000)]
        buffer.push(*events)
        started = time.perf_counter()
        assert token_events_drain() == 50_000
        elapsed = time.perf_counter() - started
        with capsys.disabled():
            print(f"\ningested 50,000 events in {elapsed:.2f} s ({50_000 / elapsed:,.0f}/s)")
        assert elapsed < 20
