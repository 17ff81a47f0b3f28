from __future__ import annotations

import base64
import json
import time

import pytest
import time_machine

from analytics.drain import token_events_drain
from analytics.models import ScopeExerciseHour
from audit.services import Actor
from clients import services as client_services
from tokens.models import SigningKey

from .conftest import INTROSPECT_URL, REVOKE_URL, basic


@pytest.fixture
def introspector(make_client):
    return make_client("gateway", can_introspect=True)


@pytest.fixture
def introspect(post_form, introspector):
    def call(token: str, caller=None, **extra):
        client, secret = caller or introspector
        return post_form(
            INTROSPECT_URL,
            {"token": token},
            HTTP_AUTHORIZATION=basic(client.client_id, secret),
            **extra,
        )

    return call


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["scope"] = "admin"
    return ".".join([header, _b64url(json.dumps(claims).encode()), signature])


@pytest.mark.django_db
class TestIntrospection:
    def test_it_describes_an_active_token(self, introspect, get_token, registered, settings):
        client, _secret = registered
        token = get_token()["access_token"]
        response = introspect(token)
        assert response.status_code == 200
        assert response["Cache-Control"] == "no-store"
        body = response.json()
        assert body["active"] is True
        assert body["client_id"] == body["sub"] == client.client_id
        assert body["scope"] == "orders:read orders:write"
        assert body["iss"] == settings.KEYWARD_ISSUER
        assert body["aud"] == settings.KEYWARD_DEFAULT_AUDIENCE
        assert body["token_type"] == "Bearer"
        assert body["exp"] > body["iat"]
        assert body["jti"]

    def test_it_accepts_post_credentials(self, post_form, introspector, get_token):
        client, secret = introspector
        response = post_form(
            INTROSPECT_URL,
            {
                "token": get_token()["access_token"],
                "client_id": client.client_id,
                "client_secret": secret,
            },
        )
        assert response.json()["active"] is True

    def test_it_reports_an_expired_token_inactive(self, introspect, get_token):
        token = get_token()["access_token"]
        with time_machine.travel(time.time() + 3601, tick=False):
            assert introspect(token).json() == {"active": False}

    def test_it_reports_a_tampered_token_inactive(self, introspect, get_token):
        assert introspect(_tamper(get_token()["access_token"])).json() == {"active": False}

    @pytest.mark.parametrize(
        "garbage", ["x", "a.b.c", "....", "eyJhbGciOiJub25lIn0.e30.", "é.é.é", "a" * 8000]
    )
    def test_it_reports_garbage_inactive(self, introspect, garbage):
        response = introspect(garbage)
        assert response.status_code == 200
        assert response.json() == {"active": False}

    def test_it_reports_an_unknown_kid_inactive(self, introspect, get_token):
        token = get_token()["access_token"]
        SigningKey.objects.all().delete()
        from tokens.keys import key_ring_reset

        key_ring_reset()
        assert introspect(token).json() == {"active": False}

    def test_it_reports_a_token_of_a_disabled_client_inactive(
        self, introspect, get_token, registered, django_capture_on_commit_callbacks
    ):
        token = get_token()["access_token"]
        with django_capture_on_commit_callbacks(execute=True):  # client_changed drops the cache
            client_services.client_set_status(
                actor=Actor.cli(), client=registered[0], status="disabled"
            )
        assert introspect(token).json() == {"active": False}

    def test_it_reports_a_revoked_token_inactive(
        self, introspect, get_token, post_form, registered
    ):
        client, secret = registered
        token = get_token()["access_token"]
        revoked = post_form(
            REVOKE_URL, {"token": token}, HTTP_AUTHORIZATION=basic(client.client_id, secret)
        )
        assert revoked.status_code == 200
        assert introspect(token).json() == {"active": False}

    def test_it_refuses_an_unauthenticated_caller(self, post_form, get_token):
        response = post_form(INTROSPECT_URL, {"token": get_token()["access_token"]})
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
        assert "Basic" in response["WWW-Authenticate"]

    def test_it_refuses_a_wrong_secret(self, introspect, introspector, get_token):
        client, _secret = introspector
        response = introspect(get_token()["access_token"], caller=(client, "kwsec_wrong"))
        assert response.status_code == 401

    def test_it_requires_the_token_parameter(self, post_form, introspector):
        client, secret = introspector
        response = post_form(INTROSPECT_URL, {}, HTTP_AUTHORIZATION=basic(client.client_id, secret))
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"

    def test_it_answers_get_with_405(self, http):
        response = http.get(INTROSPECT_URL)
        assert response.status_code == 405
        assert response["Allow"] == "POST"


@pytest.mark.django_db
class TestIntrospectionPermission:
    def test_a_client_without_the_permission_sees_only_its_own_tokens(
        self, introspect, make_client, get_token, registered
    ):
        other = make_client("other")
        own_token = get_token(other[0].client_id, other[1])["access_token"]
        foreign_token = get_token()["access_token"]
        assert introspect(own_token, caller=other).json()["active"] is True
        assert introspect(foreign_token, caller=other).json() == {"active": False}

    def test_a_bearer_caller_introspects_its_own_token(self, post_form, get_token):
        token = get_token()["access_token"]
        response = post_form(INTROSPECT_URL, {"token": token}, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.json()["active"] is True

    def test_a_bearer_caller_cannot_see_another_clients_token(
        self, post_form, get_token, make_client
    ):
        other, other_secret = make_client("other")
        caller_token = get_token(other.client_id, other_secret)["access_token"]
        foreign = get_token()["access_token"]
        response = post_form(
            INTROSPECT_URL, {"token": foreign}, HTTP_AUTHORIZATION=f"Bearer {caller_token}"
        )
        assert response.json() == {"active": False}

    def test_a_bearer_caller_with_the_permission_sees_any_token(
        self, post_form, get_token, introspector
    ):
        caller_token = get_token(introspector[0].client_id, introspector[1])["access_token"]
        response = post_form(
            INTROSPECT_URL,
            {"token": get_token()["access_token"]},
            HTTP_AUTHORIZATION=f"Bearer {caller_token}",
        )
        assert response.json()["active"] is True

    def test_an_invalid_bearer_token_gets_401(self, post_form, get_token):
        token = get_token()["access_token"]
        response = post_form(
            INTROSPECT_URL, {"token": token}, HTTP_AUTHORIZATION=f"Bearer {_tamper(token)}"
        )
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_token"
        assert response["WWW-Authenticate"].startswith("Bearer")

    def test_a_revoked_bearer_token_gets_401(self, post_form, get_token, registered):
        client, secret = registered
        token = get_token()["access_token"]
        post_form(REVOKE_URL, {"token": token}, HTTP_AUTHORIZATION=basic(client.client_id, secret))
        response = post_form(INTROSPECT_URL, {"token": token}, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 401


@pytest.mark.django_db(transaction=True)
class TestIntrospectionAsEvidence:
    """An answered introspection records whose token a resource server checked, and the
    drain rolls it up into "exercised" per client and scope."""

    def test_it_records_the_inspected_tokens_client_and_scopes(
        self, introspect, get_token, registered, introspector, events
    ):
        client, _secret = registered
        token = get_token(scope="orders:read")["access_token"]
        introspect(token)
        event = events()[-1]
        assert event.endpoint == "introspect"
        assert event.client_id == introspector[0].client_id
        assert event.subject_client_id == client.client_id
        assert event.scopes_granted == "orders:read"

    def test_the_drain_rolls_it_up_as_exercised(
        self, introspect, get_token, registered, introspector, events
    ):
        client, _secret = registered
        token = get_token()["access_token"]
        introspect(token)
        introspect(token)
        token_events_drain()
        rows = ScopeExerciseHour.objects.values_list(
            "client_id", "scope", "via", "reporter", "count"
        )
        gateway = introspector[0].client_id
        assert sorted(rows) == [
            (client.client_id, "orders:read", "introspection", gateway, 2),
            (client.client_id, "orders:write", "introspection", gateway, 2),
        ]

    def test_a_token_the_caller_may_not_see_is_no_evidence(
        self, introspect, make_client, get_token, events
    ):
        other = make_client("other")
        introspect(get_token()["access_token"], caller=other)
        introspect("not-a-token")
        assert [e.subject_client_id for e in events()[-2:]] == ["", ""]
        token_events_drain()
        assert not ScopeExerciseHour.objects.exists()

    def test_a_rate_limited_introspection_is_no_evidence(
        self, introspect, get_token, events, settings
    ):
        settings.KEYWARD_RATE_LIMIT_INTROSPECT_PER_CALLER = 1
        token = get_token()["access_token"]
        introspect(token)
        assert introspect(token).status_code == 429
        limited = events()[-1]
        assert (limited.outcome, limited.subject_client_id) == ("failure", "")
        token_events_drain()
        assert set(ScopeExerciseHour.objects.values_list("count", flat=True)) == {1}
