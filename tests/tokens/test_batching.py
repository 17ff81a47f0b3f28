"""Queued counts and events (tokens/batching.py): a process decides the requests whose
counters it knows, and sends what they queued in one script call."""

from __future__ import annotations

import time

import pytest

from analytics.models import TokenEvent
from tokens import sink
from tokens.sink import COUNTER_PREFIX, _window

from .conftest import TOKEN_URL, basic


def _token(post_form, client, secret, **extra):
    return post_form(
        TOKEN_URL,
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic(client.client_id, secret),
        **extra,
    )


def _counter(kind: str, identity: str) -> str:
    return f"{COUNTER_PREFIX}{kind}:{identity}:{_window()[1]}"


@pytest.fixture
def batched(settings):
    """Sends only when a test flushes (or after a minute): what is queued stays queued."""
    settings.KEYWARD_TOKEN_EVENT_SEND_INTERVAL = 60


@pytest.mark.django_db
class TestQueuedRequests:
    def test_the_first_request_is_sent_at_once_and_the_next_ones_are_queued(
        self, post_form, registered, events, batched
    ):
        client, secret = registered
        statuses = [_token(post_form, client, secret).status_code for _ in range(4)]
        assert statuses == [200] * 4
        # The first went by the script (it taught this process its counters' totals), the
        # second as the first batch; the next ones wait for the interval.
        assert len(events()) == 2
        sink.events_flush()
        assert [event.status_code for event in events()] == [200] * 4

    def test_a_limit_is_exact_inside_the_process_before_anything_is_sent(
        self, post_form, registered, events, redis_client, settings, batched
    ):
        settings.KEYWARD_RATE_LIMIT_PER_CLIENT = 3
        client, secret = registered
        statuses = [_token(post_form, client, secret).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        sink.events_flush()
        assert [event.reason for event in events()] == ["ok"] * 3 + ["rate_limited"] * 2
        assert int(redis_client.get(_counter("client", client.client_id))) == 5

    def test_the_sender_thread_sends_what_no_later_request_did(
        self, post_form, registered, events, settings
    ):
        settings.KEYWARD_TOKEN_EVENT_SEND_INTERVAL = 0.05
        client, secret = registered
        for _ in range(3):
            assert _token(post_form, client, secret).status_code == 200
        deadline = time.monotonic() + 5
        while len(events()) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(events()) == 3

    def test_queued_events_go_to_the_database_when_redis_fails_at_the_send(
        self, post_form, registered, events, settings, batched
    ):
        client, secret = registered
        for _ in range(5):
            assert _token(post_form, client, secret).status_code == 200
        assert len(events()) == 2
        settings.REDIS_URL = "redis://127.0.0.1:1/0"
        sink.events_flush()
        assert TokenEvent.objects.filter(client_id=client.client_id).count() == 3


@pytest.mark.django_db
class TestOtherProcesses:
    def test_their_counts_are_learned_at_the_next_send(
        self, post_form, registered, redis_client, settings
    ):
        settings.KEYWARD_RATE_LIMIT_PER_CLIENT = 5
        client, secret = registered
        assert _token(post_form, client, secret).status_code == 200
        # Another process admitted ten more of this client's requests meanwhile.
        redis_client.incrby(_counter("client", client.client_id), 10)
        # Decided on the total this process knew (the overshoot the design allows), and
        # sent at once (no interval in tests): the answer brings the other process's count.
        assert _token(post_form, client, secret).status_code == 200
        assert _token(post_form, client, secret).status_code == 429

    def test_an_address_locked_out_elsewhere_is_refused_on_its_first_request_here(
        self, post_form, registered, redis_client, settings, batched
    ):
        settings.KEYWARD_RATE_LIMIT_FAILURES_PER_IP = 3
        client, secret = registered
        redis_client.set(_counter("fail", "192.0.2.7"), 3)
        # Unknown here, so decided by the script: even the right secret is refused.
        assert _token(post_form, client, secret, REMOTE_ADDR="192.0.2.7").status_code == 429
