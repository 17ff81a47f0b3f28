"""The sink's Redis path (tokens/sink.py): one script call per request, through redis-py."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import redis

from analytics.models import TokenEvent
from audit.events import TokenEventRecord
from tokens import sink
from tokens.buffer import EVENT_BUFFER_KEY
from tokens.sink import DENYLIST_PREFIX, denylist_add_many, emit, redis_connection


def make_event(**fields) -> TokenEventRecord:
    defaults = {
        "id": uuid.uuid4().hex,
        "occurred_at": time.time(),
        "endpoint": TokenEvent.Endpoint.TOKEN,
        "client_id": "svc",
        "client_known": True,
        "outcome": TokenEvent.Outcome.SUCCESS,
        "reason": TokenEvent.Reason.OK,
        "source_ip": "198.51.100.4",
        "scopes_granted": "orders:read",
        "jti": uuid.uuid4().hex,
        "status_code": 200,
    }
    return TokenEventRecord(**(defaults | fields))


@pytest.fixture
def buffer(redis_client, settings):
    if not settings.USE_REDIS:
        pytest.skip("needs REDIS_URL")
    redis_client.delete(EVENT_BUFFER_KEY)
    yield lambda: redis_client.lrange(EVENT_BUFFER_KEY, 0, -1)
    redis_client.delete(EVENT_BUFFER_KEY)


def counters(limit: int) -> list[tuple[str, str, int]]:
    # A fresh identity per test: counters live for a whole window.
    return [("client", uuid.uuid4().hex, limit)]


class TestEmit:
    def test_it_pushes_the_event_as_answered(self, buffer):
        event = make_event()
        verdict = emit(event, ip="198.51.100.4", counters=counters(5))
        assert not verdict.limited
        assert buffer() == [event.to_buffer()]

    def test_it_pushes_the_records_rate_limited_form_when_over_a_limit(self, buffer, settings):
        event = make_event()
        verdict = emit(event, ip="198.51.100.4", counters=counters(0))
        assert 0 < verdict.retry_after <= settings.KEYWARD_RATE_LIMIT_WINDOW
        assert buffer() == [event.as_rate_limited().to_buffer()]

    def test_it_reports_a_denylisted_jti_in_the_same_call(self, buffer, redis_client):
        # With the completeness marker, Redis alone answers: this test has no database.
        redis_client.set(sink.DENYLIST_COMPLETE_KEY, 1)
        jti = uuid.uuid4().hex
        redis_client.set(DENYLIST_PREFIX + jti, 1, ex=60)
        assert emit(make_event(), ip=None, counters=[], denylist_jti=jti).denylisted
        assert not emit(make_event(), ip=None, counters=[], denylist_jti="other").denylisted
        assert len(buffer()) == 2

    def test_it_loads_the_script_again_when_redis_lost_it(self, buffer):
        connection = redis_connection()
        connection.script.sha = "0" * 40  # as after a Redis restart or SCRIPT FLUSH
        event = make_event()
        assert not emit(event, ip=None, counters=counters(5)).limited
        assert buffer() == [event.to_buffer()]
        assert connection.script.sha != "0" * 40

    def test_it_holds_one_connection_per_thread(self):
        connection = redis_connection()
        here = connection.held()
        assert connection.held() is here
        elsewhere = []
        thread = threading.Thread(target=lambda: elsewhere.append(connection.held()))
        thread.start()
        thread.join()
        assert elsewhere[0] is not here
        assert here.connection_pool is connection.client.connection_pool

    def test_it_parses_replies_with_hiredis(self):
        assert redis.utils.HIREDIS_AVAILABLE


@pytest.mark.django_db
class TestRedisDown:
    @pytest.fixture
    def dead_redis(self, settings):
        settings.REDIS_URL = "redis://127.0.0.1:1/0"
        sink.sink_reset()
        yield
        sink.sink_reset()

    def test_it_fails_open_and_leaves_redis_alone_for_a_while(self, dead_redis):
        event = make_event()
        started = time.monotonic()
        assert not emit(event, ip="198.51.100.4", counters=counters(0)).limited
        assert time.monotonic() - started < 1  # no retries with backoff
        assert TokenEvent.objects.filter(id=event.id).exists()
        assert redis_connection() is None  # DOWN_BACKOFF

    def test_the_database_fallback_records_the_rate_limited_form(self, settings):
        settings.REDIS_URL = ""
        event = make_event()
        assert emit(event, ip="198.51.100.4", counters=counters(0)).limited
        row = TokenEvent.objects.get(id=event.id)
        assert (row.reason, row.status_code, row.jti) == ("rate_limited", 429, "")


class TestDenylistAddMany:
    def test_it_sets_every_entry_with_its_ttl_in_chunks(self, redis_client, monkeypatch):
        monkeypatch.setattr(sink, "DENYLIST_CHUNK", 2)
        jtis = [uuid.uuid4().hex for _ in range(5)]
        assert denylist_add_many([(jti, 60) for jti in jtis])
        assert redis_client.exists(*[DENYLIST_PREFIX + jti for jti in jtis]) == 5
        assert 0 < redis_client.ttl(DENYLIST_PREFIX + jtis[-1]) <= 60
        redis_client.delete(*[DENYLIST_PREFIX + jti for jti in jtis])

    def test_it_answers_false_when_redis_is_down(self, settings):
        settings.REDIS_URL = "redis://127.0.0.1:1/0"
        sink.sink_reset()
        assert not denylist_add_many([("a", 60)])
