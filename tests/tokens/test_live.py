"""Against a real server: client libraries, offline validation, and a second server process."""

from __future__ import annotations

import time

import jwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session as AuthlibSession
from django.conf import settings
from oauthlib.oauth2 import BackendApplicationClient
from requests_oauthlib import OAuth2Session

from audit.services import Actor
from clients import services as client_services
from security import services as security_services

from .conftest import basic


@pytest.fixture
def insecure_transport(monkeypatch):
    # The live server speaks plain HTTP; both libraries refuse that unless told.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.mark.django_db(transaction=True)
class TestInterop:
    def test_requests_oauthlib_backend_application_client(
        self, live_server, registered, insecure_transport
    ):
        client, secret = registered
        session = OAuth2Session(client=BackendApplicationClient(client_id=client.client_id))
        token = session.fetch_token(
            token_url=live_server.url + "/token-srv/token",
            client_id=client.client_id,
            client_secret=secret,
        )
        assert token["token_type"] == "Bearer"
        assert token["scope"] == ["orders:read", "orders:write"]

    @pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
    def test_authlib_client(self, live_server, registered, insecure_transport, method):
        client, secret = registered
        session = AuthlibSession(
            client.client_id, secret, token_endpoint_auth_method=method, scope="orders:read"
        )
        token = session.fetch_token(
            live_server.url + "/token-srv/token", grant_type="client_credentials"
        )
        assert token["scope"] == "orders:read"
        assert token["expires_in"] == 3600

    def test_pyjwkclient_validates_offline(self, live_server, registered):
        client, secret = registered
        response = requests.post(
            live_server.url + "/token-srv/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": basic(client.client_id, secret)},
            timeout=5,
        )
        token = response.json()["access_token"]
        jwks_client = jwt.PyJWKClient(live_server.url + "/.well-known/jwks.json")
        signing_key = jwks_client.get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            signing_key.key,
            algorithms=["RS256", "ES256", "EdDSA"],
            audience=settings.KEYWARD_DEFAULT_AUDIENCE,
            issuer=settings.KEYWARD_ISSUER,
        )
        assert claims["client_id"] == client.client_id

    def test_metadata_is_discoverable(self, live_server):
        body = requests.get(
            live_server.url + "/.well-known/oauth-authorization-server", timeout=5
        ).json()
        assert body["grant_types_supported"] == ["client_credentials"]


def _token_status(url: str, client_id: str, secret: str) -> int:
    return requests.post(
        url + "/token-srv/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(client_id, secret)},
        timeout=5,
    ).status_code


def _refused_within(url: str, client_id: str, secret: str, changed_at: float) -> float:
    while time.monotonic() - changed_at < 3:
        if _token_status(url, client_id, secret) == 401:
            return time.monotonic() - changed_at
        time.sleep(0.02)
    return float("inf")


def _all_workers_refuse_after_a_second(url, client_id, secret, changed_at) -> None:
    time.sleep(max(0.0, changed_at + 1.0 - time.monotonic()))
    assert {_token_status(url, client_id, secret) for _ in range(8)} == {401}


class TestSecondProcess:
    def test_a_revoked_secret_is_refused_within_a_second(self, production_server, make_client):
        client, secret = make_client()
        # Both workers cache the client (requests are spread over them).
        assert {_token_status(production_server, client.client_id, secret) for _ in range(6)} == {
            200
        }
        changed_at = time.monotonic()
        security_services.client_secret_revoke(actor=Actor.cli(), secret=client.secrets.get())
        assert _refused_within(production_server, client.client_id, secret, changed_at) <= 1.0
        _all_workers_refuse_after_a_second(production_server, client.client_id, secret, changed_at)

    def test_a_disabled_client_is_refused_within_a_second(self, production_server, make_client):
        client, secret = make_client()
        assert {_token_status(production_server, client.client_id, secret) for _ in range(6)} == {
            200
        }
        changed_at = time.monotonic()
        client_services.client_set_status(actor=Actor.cli(), client=client, status="disabled")
        assert _refused_within(production_server, client.client_id, secret, changed_at) <= 1.0
        _all_workers_refuse_after_a_second(production_server, client.client_id, secret, changed_at)
