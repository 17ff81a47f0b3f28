"""A client secret presented as a client_id never reaches the event log."""

from __future__ import annotations

import time

import pytest

from analytics.drain import token_events_drain
from analytics.models import TokenEvent
from audit.events import REDACTED_CLIENT_ID, TokenEventRecord, client_id_redacted
from tokens.buffer import EVENT_BUFFER_KEY

from .conftest import INTROSPECT_URL, REVOKE_URL, TOKEN_URL, basic


@pytest.fixture
def swapped(registered):
    """(client_id, secret) of `registered`, the secret being the one presented as client_id."""
    client, secret = registered
    return client.client_id, secret


class TestRedactionAtTheEndpoints:
    @pytest.mark.parametrize("url", [TOKEN_URL, INTROSPECT_URL, REVOKE_URL])
    def test_it_redacts_a_secret_sent_as_client_id_with_basic_auth(
        self, post_form, swapped, redis_client, events, url
    ):
        client_id, secret = swapped
        form = {"grant_type": "client_credentials", "token": "x"}
        response = post_form(url, form, HTTP_AUTHORIZATION=basic(secret, client_id))
        assert response.status_code == 401
        self.assert_redacted(redis_client, events, secret)

    @pytest.mark.parametrize("url", [TOKEN_URL, INTROSPECT_URL, REVOKE_URL])
    def test_it_redacts_a_secret_sent_as_client_id_in_the_body(
        self, post_form, swapped, redis_client, events, url
    ):
        client_id, secret = swapped
        form = {"grant_type": "client_credentials", "token": "x"}
        response = post_form(url, form | {"client_id": secret, "client_secret": client_id})
        assert response.status_code == 401
        self.assert_redacted(redis_client, events, secret)

    def test_it_redacts_a_secret_inside_a_client_id_on_a_malformed_request(
        self, post_form, swapped, redis_client, events
    ):
        _client_id, secret = swapped
        response = post_form(TOKEN_URL, {"grant_type": "password", "client_id": f"id:{secret}"})
        assert response.status_code == 400
        self.assert_redacted(redis_client, events, secret)

    def test_it_keeps_the_client_id_of_an_ordinary_failure(self, post_form, events, swapped):
        client_id, _secret = swapped
        form = {"grant_type": "client_credentials", "client_id": client_id}
        post_form(TOKEN_URL, form | {"client_secret": "wrong"})
        assert [event.client_id for event in events()] == [client_id]

    @staticmethod
    def assert_redacted(redis_client, events, secret: str) -> None:
        raw = b"".join(redis_client.lrange(EVENT_BUFFER_KEY, 0, -1))
        assert secret.encode() not in raw
        assert [event.client_id for event in events()] == [REDACTED_CLIENT_ID]
        assert token_events_drain() == 1
        assert TokenEvent.objects.get().client_id == REDACTED_CLIENT_ID


class TestRedactionInTheDrain:
    def test_it_redacts_records_of_other_producers(self, db, redis_client, events):
        record = TokenEventRecord(
            id="0" * 32,
            occurred_at=time.time(),  # inside the retention window
            endpoint="token",
            client_id="kwsec_" + "A" * 43,
            outcome="failure",
            reason="invalid_client",
            status_code=401,
        )
        redis_client.rpush(EVENT_BUFFER_KEY, record.to_buffer())
        assert token_events_drain() == 1
        assert TokenEvent.objects.get().client_id == REDACTED_CLIENT_ID

    @pytest.mark.parametrize("value", ["", "svc", "kwsec", "KWSEC-abc"])
    def test_it_leaves_other_values_alone(self, value):
        assert client_id_redacted(value) == value
