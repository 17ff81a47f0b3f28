"""During a rotation's overlap both secrets get tokens; after it, or once revoked, the old
one is refused. Through the real token endpoint (tokens/), not just the model."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from audit.services import Actor
from security import services
from tokens import sink
from tokens.client_cache import client_cache_clear
from tokens.keys import key_ring_reset

from .conftest import days

TOKEN_URL = "/token-srv/token"


@pytest.fixture(autouse=True)
def _fresh_token_service():
    for reset in (key_ring_reset, client_cache_clear, sink.sink_reset):
        reset()
    yield
    for reset in (key_ring_reset, client_cache_clear, sink.sink_reset):
        reset()


@pytest.fixture
def token_status(client):
    def post(client_id: str, secret: str) -> int:
        credentials = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        response = client.post(
            TOKEN_URL,
            "grant_type=client_credentials",
            content_type="application/x-www-form-urlencoded",
            HTTP_AUTHORIZATION=f"Basic {credentials}",
            REMOTE_ADDR="127.0.0.1",
        )
        return response.status_code

    return post


def test_both_secrets_work_during_the_overlap_then_only_the_new(
    prod_client, clock, token_status, django_capture_on_commit_callbacks
):
    client, old = prod_client
    assert token_status(client.client_id, old) == 200
    with django_capture_on_commit_callbacks(execute=True):
        _, new = services.client_secret_rotate(
            actor=Actor.cli(), client=client, grace=timedelta(hours=1)
        )
    assert token_status(client.client_id, old) == 200
    assert token_status(client.client_id, new) == 200
    clock.shift(timedelta(hours=1, seconds=1))
    client_cache_clear()
    assert token_status(client.client_id, old) == 401
    assert token_status(client.client_id, new) == 200


def test_a_revoked_old_secret_is_refused_and_the_new_one_works(
    prod_client, clock, token_status, django_capture_on_commit_callbacks
):
    client, old = prod_client
    with django_capture_on_commit_callbacks(execute=True):
        _, new = services.client_secret_rotate(actor=Actor.cli(), client=client, grace=days(7))
    old_row = client.secrets.order_by("created_at", "id").first()
    with django_capture_on_commit_callbacks(execute=True):
        services.client_secret_revoke(actor=Actor.cli(), secret=old_row)
    assert token_status(client.client_id, old) == 401
    assert token_status(client.client_id, new) == 200
