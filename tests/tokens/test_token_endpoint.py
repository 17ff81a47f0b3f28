from __future__ import annotations

import time

import jwt
import pytest
from django.utils import timezone

from audit.services import Actor
from clients import services as client_services
from security import services as security_services
from tokens.keys import key_ring

from .conftest import FORM, TOKEN_URL, basic


def _decode(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


@pytest.mark.django_db
class TestTokenSuccess:
    def test_it_issues_a_jwt_with_basic_auth(self, post_form, registered):
        client, secret = registered
        response = post_form(
            TOKEN_URL,
            {"grant_type": "client_credentials"},
            HTTP_AUTHORIZATION=basic(client.client_id, secret),
        )
        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 3600
        assert body["scope"] == "orders:read orders:write"
        assert "refresh_token" not in body
        assert response["Cache-Control"] == "no-store"
        assert response["Pragma"] == "no-cache"
        assert response["Content-Type"] == "application/json"

    def test_it_issues_a_jwt_with_post_auth(self, post_form, registered):
        client, secret = registered
        response = post_form(
            TOKEN_URL,
            {
                "grant_type": "client_credentials",
                "client_id": client.client_id,
                "client_secret": secret,
            },
        )
        assert response.status_code == 200
        assert response.json()["access_token"].count(".") == 2

    def test_it_accepts_basic_with_the_same_client_id_in_the_body(self, post_form, registered):
        client, secret = registered
        response = post_form(
            TOKEN_URL,
            {"grant_type": "client_credentials", "client_id": client.client_id},
            HTTP_AUTHORIZATION=basic(client.client_id, secret),
        )
        assert response.status_code == 200

    def test_it_puts_rfc9068_claims_and_header(self, get_token, registered, settings):
        client, _secret = registered
        before = int(time.time())
        token = get_token()["access_token"]
        header = jwt.get_unverified_header(token)
        assert header["typ"] == "at+jwt"
        assert header["alg"] == "RS256"
        assert header["kid"] == key_ring().active.kid
        claims = _decode(token)
        assert claims["iss"] == settings.KEYWARD_ISSUER
        assert claims["sub"] == claims["client_id"] == client.client_id
        assert claims["aud"] == settings.KEYWARD_DEFAULT_AUDIENCE
        assert claims["scope"] == "orders:read orders:write"
        assert before <= claims["iat"] <= before + 2
        assert claims["exp"] == claims["iat"] + 3600
        assert len(claims["jti"]) >= 16

    def test_it_uses_the_client_audiences_and_lifetime(self, make_client, scopes, get_token):
        client, secret = make_client(
            audiences=["https://a.example", "https://b.example"],
            access_token_lifetime=120,
            scopes=scopes[:1],
        )
        body = get_token(client.client_id, secret)
        claims = _decode(body["access_token"])
        assert claims["aud"] == ["https://a.example", "https://b.example"]
        assert body["expires_in"] == 120
        assert claims["exp"] - claims["iat"] == 120

    def test_it_uses_a_single_string_for_one_audience(self, make_client, get_token):
        client, secret = make_client(audiences=["https://only.example"])
        claims = _decode(get_token(client.client_id, secret)["access_token"])
        assert claims["aud"] == "https://only.example"

    def test_it_gives_unique_jtis(self, get_token):
        assert (
            _decode(get_token()["access_token"])["jti"]
            != _decode(get_token()["access_token"])["jti"]
        )

    def test_it_signs_with_es256_when_configured(self, settings, get_token):
        settings.KEYWARD_SIGNING_ALGORITHM = "ES256"
        token = get_token()["access_token"]
        assert jwt.get_unverified_header(token)["alg"] == "ES256"


@pytest.mark.django_db
class TestScopes:
    def test_it_issues_a_requested_subset(self, get_token):
        body = get_token(scope="orders:read")
        assert body["scope"] == "orders:read"
        assert _decode(body["access_token"])["scope"] == "orders:read"

    def test_it_deduplicates_requested_scopes(self, get_token):
        assert get_token(scope="orders:read orders:read")["scope"] == "orders:read"

    def test_it_refuses_a_scope_not_granted(self, post_form, registered):
        client, secret = registered
        response = post_form(
            TOKEN_URL,
            {"grant_type": "client_credentials", "scope": "orders:read billing:read"},
            HTTP_AUTHORIZATION=basic(client.client_id, secret),
        )
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_scope"

    def test_it_refuses_an_unknown_scope(self, post_form, registered):
        client, secret = registered
        response = post_form(
            TOKEN_URL,
            {"grant_type": "client_credentials", "scope": "nope"},
            HTTP_AUTHORIZATION=basic(client.client_id, secret),
        )
        assert response.json()["error"] == "invalid_scope"

    def test_it_issues_an_empty_scope_for_a_client_without_grants(self, make_client, get_token):
        client, secret = make_client()
        assert get_token(client.client_id, secret)["scope"] == ""


def _invalid_client(response, *, basic_used=True):
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "Client authentication failed.",
    }
    assert response["WWW-Authenticate"].startswith("Basic realm=")
    assert response["Cache-Control"] == "no-store"
    return response


@pytest.mark.django_db
class TestClientAuthentication:
    def test_it_refuses_a_wrong_secret(self, post_form, registered):
        client, _secret = registered
        _invalid_client(
            post_form(
                TOKEN_URL,
                {"grant_type": "client_credentials"},
                HTTP_AUTHORIZATION=basic(client.client_id, "kwsec_wrong"),
            )
        )

    def test_it_answers_unknown_client_and_wrong_secret_alike(self, post_form, registered):
        client, _secret = registered
        wrong = post_form(
            TOKEN_URL,
            {
                "grant_type": "client_credentials",
                "client_id": client.client_id,
                "client_secret": "kwsec_wrong",
            },
        )
        unknown = post_form(
            TOKEN_URL,
            {
                "grant_type": "client_credentials",
                "client_id": "nobody",
                "client_secret": "kwsec_wrong",
            },
        )
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.content == unknown.content
        assert sorted(wrong.headers.items()) == sorted(unknown.headers.items())

    def test_it_refuses_both_methods_at_once(self, post_form, registered):
        client, secret = registered
        response = post_form(
            TOKEN_URL,
            {
                "grant_type": "client_credentials",
                "client_id": client.client_id,
                "client_secret": secret,
            },
            HTTP_AUTHORIZATION=basic(client.client_id, secret),
        )
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"

    def test_it_refuses_a_different_client_id_in_the_body(self, post_form, registered):
        client, secret = registered
        response = post_form(
            TOKEN_URL,
            {"grant_type": "client_credentials", "client_id": "someone-else"},
            HTTP_AUTHORIZATION=basic(client.client_id, secret),
        )
        assert response.json()["error"] == "invalid_request"

    def test_it_refuses_no_credentials(self, post_form, registered):
        _invalid_client(post_form(TOKEN_URL, {"grant_type": "client_credentials"}))

    def test_it_refuses_a_client_id_without_secret(self, post_form, registered):
        client, _secret = registered
        _invalid_client(
            post_form(
                TOKEN_URL, {"grant_type": "client_credentials", "client_id": client.client_id}
            )
        )

    def test_it_refuses_malformed_basic(self, post_form, registered):
        _invalid_client(
            post_form(
                TOKEN_URL,
                {"grant_type": "client_credentials"},
                HTTP_AUTHORIZATION="Basic !!!not-base64",
            )
        )

    def test_it_refuses_a_revoked_secret(self, post_form, registered):
        client, secret = registered
        security_services.client_secret_revoke(actor=Actor.cli(), secret=client.secrets.get())
        _invalid_client(
            post_form(
                TOKEN_URL,
                {"grant_type": "client_credentials"},
                HTTP_AUTHORIZATION=basic(client.client_id, secret),
            )
        )

    def test_it_refuses_an_expired_secret(self, post_form, registered):
        client, secret = registered
        client.secrets.update(expires_at=timezone.now())
        _invalid_client(
            post_form(
                TOKEN_URL,
                {"grant_type": "client_credentials"},
                HTTP_AUTHORIZATION=basic(client.client_id, secret),
            )
        )

    def test_it_accepts_a_second_valid_secret(self, post_form, registered):
        client, old = registered
        _row, new = client_services.client_secret_create(actor=Actor.cli(), client=client)
        for secret in (old, new):
            response = post_form(
                TOKEN_URL,
                {"grant_type": "client_credentials"},
                HTTP_AUTHORIZATION=basic(client.client_id, secret),
            )
            assert response.status_code == 200

    def test_it_refuses_a_disabled_client(self, post_form, registered):
        client, secret = registered
        client_services.client_set_status(actor=Actor.cli(), client=client, status="disabled")
        _invalid_client(
            post_form(
                TOKEN_URL,
                {"grant_type": "client_credentials"},
                HTTP_AUTHORIZATION=basic(client.client_id, secret),
            )
        )

    def test_it_sees_a_disabled_client_within_a_second_without_the_signal(
        self, post_form, registered
    ):
        client, secret = registered
        auth = basic(client.client_id, secret)
        assert (
            post_form(
                TOKEN_URL, {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=auth
            ).status_code
            == 200
        )
        # A write from another process: no signal reaches this one.
        type(client).objects.filter(pk=client.pk).update(status="disabled")
        assert (
            post_form(
                TOKEN_URL, {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=auth
            ).status_code
            == 200
        )  # cached
        time.sleep(1.0)  # KEYWARD_CLIENT_CACHE_SECONDS is 0.9
        assert (
            post_form(
                TOKEN_URL, {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=auth
            ).status_code
            == 401
        )


@pytest.mark.django_db
class TestNetworks:
    def test_it_accepts_an_address_inside_the_allowed_networks(self, make_client, http):
        client, secret = make_client(allowed_networks=["10.0.0.0/8"])
        response = http.post(
            TOKEN_URL,
            "grant_type=client_credentials",
            content_type=FORM,
            HTTP_AUTHORIZATION=basic(client.client_id, secret),
            REMOTE_ADDR="10.1.2.3",
        )
        assert response.status_code == 200

    def test_it_refuses_an_address_outside(self, make_client, http):
        client, secret = make_client(allowed_networks=["10.0.0.0/8"])
        response = http.post(
            TOKEN_URL,
            "grant_type=client_credentials",
            content_type=FORM,
            HTTP_AUTHORIZATION=basic(client.client_id, secret),
            REMOTE_ADDR="192.0.2.1",
        )
        _invalid_client(response)

    def test_it_ignores_forwarded_for_from_an_untrusted_peer(self, make_client, http):
        client, secret = make_client(allowed_networks=["10.0.0.0/8"])
        response = http.post(
            TOKEN_URL,
            "grant_type=client_credentials",
            content_type=FORM,
            HTTP_AUTHORIZATION=basic(client.client_id, secret),
            REMOTE_ADDR="192.0.2.1",
            HTTP_X_FORWARDED_FOR="10.1.2.3",
        )
        assert response.status_code == 401

    def test_it_uses_the_rightmost_untrusted_hop_behind_a_trusted_proxy(
        self, make_client, http, settings
    ):
        settings.KEYWARD_TRUSTED_PROXIES = ["192.0.2.0/24"]
        client, secret = make_client(allowed_networks=["10.0.0.0/8"])
        ok = http.post(
            TOKEN_URL,
            "grant_type=client_credentials",
            content_type=FORM,
            HTTP_AUTHORIZATION=basic(client.client_id, secret),
            REMOTE_ADDR="192.0.2.1",
            HTTP_X_FORWARDED_FOR="203.0.113.9, 10.1.2.3, 192.0.2.7",
        )
        assert ok.status_code == 200
        spoofed = http.post(
            TOKEN_URL,
            "grant_type=client_credentials",
            content_type=FORM,
            HTTP_AUTHORIZATION=basic(client.client_id, secret),
            REMOTE_ADDR="192.0.2.1",
            HTTP_X_FORWARDED_FOR="10.1.2.3, 203.0.113.9",
        )
        assert spoofed.status_code == 401


@pytest.mark.django_db
class TestRequestErrors:
    def test_it_answers_get_with_405_json(self, http):
        response = http.get(TOKEN_URL)
        assert response.status_code == 405
        assert response["Allow"] == "POST"
        assert response.json()["error"] == "invalid_request"

    def test_it_refuses_another_grant_type(self, post_form, registered):
        client, secret = registered
        response = post_form(
            TOKEN_URL,
            {"grant_type": "password"},
            HTTP_AUTHORIZATION=basic(client.client_id, secret),
        )
        assert response.status_code == 400
        assert response.json()["error"] == "unsupported_grant_type"

    def test_it_refuses_a_missing_grant_type(self, post_form, registered):
        client, secret = registered
        response = post_form(TOKEN_URL, {}, HTTP_AUTHORIZATION=basic(client.client_id, secret))
        assert response.json()["error"] == "invalid_request"

    def test_it_refuses_a_repeated_parameter(self, post_form, registered):
        client, secret = registered
        response = post_form(
            TOKEN_URL,
            "grant_type=client_credentials&scope=a&scope=b",
            HTTP_AUTHORIZATION=basic(client.client_id, secret),
        )
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"

    @pytest.mark.parametrize(
        "content_type", ["application/json", "text/plain", "", "multipart/form-data"]
    )
    def test_it_refuses_other_content_types(self, post_form, registered, content_type):
        client, secret = registered
        response = post_form(
            TOKEN_URL,
            "grant_type=client_credentials",
            content_type=content_type,
            HTTP_AUTHORIZATION=basic(client.client_id, secret),
        )
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"

    def test_it_accepts_a_utf8_charset(self, post_form, registered):
        client, secret = registered
        response = post_form(
            TOKEN_URL,
            "grant_type=client_credentials",
            content_type=FORM + "; charset=UTF-8",
            HTTP_AUTHORIZATION=basic(client.client_id, secret),
        )
        assert response.status_code == 200

    @pytest.mark.parametrize(
        "body", [b"grant_type=client_credentials&x=\xff\xfe", b"grant_type=%ff%fe", b"a=%00"]
    )
    def test_it_refuses_non_utf8_and_nul(self, post_form, registered, body):
        client, secret = registered
        response = post_form(TOKEN_URL, body, HTTP_AUTHORIZATION=basic(client.client_id, secret))
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"

    def test_it_refuses_an_oversized_body(self, post_form, registered):
        client, secret = registered
        body = "grant_type=client_credentials&pad=" + "x" * 9000
        response = post_form(TOKEN_URL, body, HTTP_AUTHORIZATION=basic(client.client_id, secret))
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"
