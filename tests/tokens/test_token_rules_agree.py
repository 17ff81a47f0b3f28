"""The resource-server kit (offline) and introspection judge the same token the same way.

The tokens are forged here with the service's own active signing key, so the signature is
good and only the rule under test can refuse them.
"""

from __future__ import annotations

import time
import uuid

import orjson
import pytest
from django.conf import settings
from joserfc import jws

from tokens import resource
from tokens.keys import key_ring, signing_key_ensure_active

from .conftest import INTROSPECT_URL, basic

LEEWAY = resource.DEFAULT_LEEWAY_SECONDS


@pytest.fixture
def forge(registered):
    """forge(header=..., **claims): a token of `registered` signed with our active key."""
    client, _secret = registered
    signing_key_ensure_active()

    def sign(header: dict | None = None, **claims) -> str:
        key = key_ring(force=True).active
        now = int(time.time())
        payload = {
            "iss": settings.KEYWARD_ISSUER,
            "sub": client.client_id,
            "client_id": client.client_id,
            "aud": settings.KEYWARD_DEFAULT_AUDIENCE,
            "scope": "orders:read",
            "iat": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
        } | claims
        return jws.serialize_compact(
            key.header | (header or {}), orjson.dumps(payload), key.jwk, registry=key.registry
        )

    return sign


@pytest.fixture
def offline(http, monkeypatch):
    """The kit's offline validator, reading our JWKS endpoint: True when it accepts."""
    monkeypatch.setattr(resource, "_jwks_caches", {})
    validator = resource.build_validator(
        mode="offline",
        issuer=None,
        audience=None,
        jwks_url=None,
        jwks_provider=lambda: http.get("/.well-known/jwks.json").json(),
        jwks_min_refetch=0,
        introspection_url=None,
        introspection_auth=None,
        algorithms=resource.DEFAULT_ALGORITHMS,
        leeway=LEEWAY,
        introspection_cache_seconds=0,
    )

    def accepts(token: str) -> bool:
        try:
            validator.validate(token)
        except resource.BearerError:
            return False
        return True

    return accepts


@pytest.fixture
def introspection(post_form, make_client):
    """Introspection by a client allowed to see every token: True when active."""
    caller, secret = make_client("gateway", can_introspect=True)

    def active(token: str) -> bool:
        response = post_form(
            INTROSPECT_URL,
            {"token": token},
            HTTP_AUTHORIZATION=basic(caller.client_id, secret),
        )
        assert response.status_code == 200
        return response.json()["active"]

    return active


def in_future(seconds: int) -> int:
    return int(time.time()) + seconds


CASES = {
    "typ at+jwt": ({"typ": "at+jwt"}, {}, True),
    "typ AT+JWT": ({"typ": "AT+JWT"}, {}, True),
    "typ Application/At+Jwt": ({"typ": "Application/At+Jwt"}, {}, True),
    "typ JWT": ({"typ": "JWT"}, {}, False),
    "iat within the leeway": ({}, {"iat": in_future(LEEWAY // 2)}, True),
    "iat an hour ahead": ({}, {"iat": in_future(3600)}, False),
    "nbf within the leeway": ({}, {"nbf": in_future(LEEWAY // 2)}, True),
    "nbf an hour ahead": ({}, {"nbf": in_future(3600)}, False),
    "nbf not a number": ({}, {"nbf": "soon"}, False),
}


class TestKitAndIntrospectionAgree:
    @pytest.mark.parametrize("case", CASES)
    def test_it_gives_the_same_verdict_on_both_paths(self, forge, offline, introspection, case):
        header, claims, expected = CASES[case]
        token = forge(header, **claims)
        assert (offline(token), introspection(token)) == (expected, expected)
