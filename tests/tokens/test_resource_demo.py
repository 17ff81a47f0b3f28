"""The demo resource server: offline validation (JWT + JWKS) says it cannot see a
revocation, and the online mode at a second URL (introspection) refuses a revoked token."""

from __future__ import annotations

import pytest

from audit.services import Actor
from clients import services
from tokens import resource

from .conftest import REVOKE_URL, TOKEN_URL, basic

OFFLINE_URL = "/api/protected-resource"
ONLINE_URL = "/api/protected-resource/online"


@pytest.fixture(autouse=True)
def _fresh_jwks(monkeypatch):
    # Each test makes its own signing key; the demo's JWKS cache must not remember the last.
    monkeypatch.setattr(resource, "_jwks_caches", {})


@pytest.fixture
def demo_client(make_client, make_scope):
    return make_client("Local dev app", scopes=[make_scope("demo:read")])


@pytest.fixture
def token(post_form, demo_client) -> str:
    client, secret = demo_client
    response = post_form(
        TOKEN_URL,
        {"grant_type": "client_credentials", "scope": "demo:read"},
        HTTP_AUTHORIZATION=basic(client.client_id, secret),
    )
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def call(http, url: str, token: str):
    return http.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")


class TestOfflineMode:
    def test_it_says_a_revoked_token_passes_until_it_expires(self, http, token):
        body = call(http, OFFLINE_URL, token).json()
        validation = body["validation"]
        assert validation["mode"] == "offline"
        assert "revoked token" in validation["caveat"] and "until" in validation["caveat"]
        assert " UTC, in " in validation["caveat"]  # when this token expires, said plainly
        assert validation["online_mode"] == "http://testserver" + ONLINE_URL

    def test_it_still_accepts_a_revoked_token(self, http, post_form, demo_client, token):
        client, secret = demo_client
        revoked = post_form(
            REVOKE_URL, {"token": token}, HTTP_AUTHORIZATION=basic(client.client_id, secret)
        )
        assert revoked.status_code == 200
        assert call(http, OFFLINE_URL, token).status_code == 200


class TestOnlineMode:
    def test_it_accepts_an_active_token_and_says_how(self, http, demo_client, token):
        response = call(http, ONLINE_URL, token)
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["client_id"] == demo_client[0].client_id and body["scope"] == "demo:read"
        assert body["validation"]["mode"] == "introspection"
        assert body["validation"]["offline_mode"] == "http://testserver" + OFFLINE_URL

    def test_it_refuses_a_revoked_token_at_once(self, http, post_form, demo_client, token):
        client, secret = demo_client
        assert call(http, ONLINE_URL, token).status_code == 200
        post_form(REVOKE_URL, {"token": token}, HTTP_AUTHORIZATION=basic(client.client_id, secret))
        response = call(http, ONLINE_URL, token)
        assert response.status_code == 401
        assert 'error="invalid_token"' in response["WWW-Authenticate"]

    def test_it_refuses_the_token_of_a_disabled_client(
        self, http, demo_client, token, django_capture_on_commit_callbacks
    ):
        client, _ = demo_client
        with django_capture_on_commit_callbacks(execute=True):  # drops the cached client
            services.client_set_status(actor=Actor.cli(), client=client, status="disabled")
        assert call(http, ONLINE_URL, token).status_code == 401
        assert call(http, OFFLINE_URL, token).status_code == 200

    def test_it_refuses_a_request_without_a_token(self, http):
        response = http.get(ONLINE_URL)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer realm=")
