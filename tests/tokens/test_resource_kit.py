"""The resource-server kit (tokens/resource.py) and the demo endpoint.

Tokens are signed here with test keys; only the outside world (the issuer's JWKS and
introspection endpoints) is faked, by a provider callable or a local HTTP server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection
from django.http import JsonResponse
from django.test import RequestFactory
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from tokens import resource
from tokens.resource import require_scopes

ISSUER = "https://issuer.example"
AUDIENCE = "https://api.example"

RSA_KEY = RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "alg": "RS256", "use": "sig"})
EC_KEY = ECKey.generate_key("P-256", parameters={"kid": "ec-1", "alg": "ES256", "use": "sig"})
ROTATED_KEY = RSAKey.generate_key(2048, parameters={"kid": "rsa-2", "alg": "RS256"})


def jwks(*keys) -> dict:
    return {"keys": [key.as_dict(private=False) for key in keys]}


def sign(key=RSA_KEY, header: dict | None = None, **claims) -> str:
    now = int(resource.clock())
    payload = {
        "iss": ISSUER,
        "sub": "client-1",
        "client_id": "client-1",
        "aud": AUDIENCE,
        "scope": "demo:read orders:read",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    payload.update(claims)
    payload = {name: value for name, value in payload.items() if value is not None}
    header = {"alg": key.alg, "typ": "at+jwt", "kid": key.kid, **(header or {})}
    return jwt.encode(header, payload, key)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64(data: dict) -> str:
    return b64url(json.dumps(data).encode())


class FakeClock:
    def __init__(self):
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeJWKS:
    """A jwks_provider that counts its calls."""

    def __init__(self, document: dict):
        self.document = document
        self.calls = 0

    def __call__(self) -> dict:
        self.calls += 1
        if isinstance(self.document, Exception):
            raise self.document
        return self.document


@pytest.fixture(autouse=True)
def fresh_kit(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(resource, "clock", clock)
    monkeypatch.setattr(resource, "_jwks_caches", {})
    return clock


@pytest.fixture
def clock(fresh_kit) -> FakeClock:
    return fresh_kit


def protected(*scopes, **options):
    """A view behind require_scopes that echoes the claims it was given."""

    @require_scopes(*scopes, **{"issuer": ISSUER, "audience": AUDIENCE, **options})
    def view(request):
        return JsonResponse({"claims": request.access_token_claims})

    return view


def call(view, token: str | None = None, authorization: str | None = None):
    headers = {}
    if token is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    if authorization is not None:
        headers["HTTP_AUTHORIZATION"] = authorization
    return view(RequestFactory().get("/resource", **headers))


def challenge(response) -> dict:
    """The WWW-Authenticate Bearer parameters as a dict."""
    scheme, _, params = response["WWW-Authenticate"].partition(" ")
    assert scheme == "Bearer"
    return {
        name.strip(): value.strip('"')
        for name, _, value in (part.partition("=") for part in params.split('", '))
    }


def assert_invalid_token(response, description_part: str = "") -> None:
    assert response.status_code == 401
    params = challenge(response)
    assert params["error"] == "invalid_token"
    assert description_part in params["error_description"]
    assert json.loads(response.content)["error"] == "invalid_token"


class TestOfflineValidation:
    def test_it_passes_a_valid_token_and_sets_the_claims(self):
        view = protected("demo:read", jwks_provider=FakeJWKS(jwks(RSA_KEY)))
        response = call(view, sign())
        assert response.status_code == 200
        claims = json.loads(response.content)["claims"]
        assert claims["client_id"] == "client-1" and claims["scope"] == "demo:read orders:read"

    def test_it_accepts_es256_and_an_audience_list(self):
        view = protected("demo:read", jwks_provider=FakeJWKS(jwks(RSA_KEY, EC_KEY)))
        assert call(view, sign(EC_KEY, aud=["other", AUDIENCE])).status_code == 200

    def test_it_answers_a_missing_token_with_a_bare_challenge(self):
        view = protected("demo:read", jwks_provider=FakeJWKS(jwks(RSA_KEY)), realm="orders")
        for response in (call(view), call(view, authorization="Basic dXNlcjpwdw==")):
            assert response.status_code == 401
            assert response["WWW-Authenticate"] == 'Bearer realm="orders"'
            assert "error" in json.loads(response.content)

    def test_it_answers_a_malformed_header_with_invalid_request(self):
        view = protected("demo:read", jwks_provider=FakeJWKS(jwks(RSA_KEY)))
        for header in ("Bearer", "Bearer a b", 'Bearer "x"'):
            response = call(view, authorization=header)
            assert response.status_code == 400
            assert challenge(response)["error"] == "invalid_request"

    def test_it_refuses_garbage_and_tampered_tokens(self):
        view = protected("demo:read", jwks_provider=FakeJWKS(jwks(RSA_KEY)))
        token = sign()
        header, payload, signature = token.split(".")
        forged = b64({**json.loads(base64.urlsafe_b64decode(payload + "==")), "scope": "admin"})
        for bad in ("abc", "a.b.c", f"{header}.{forged}.{signature}", f"{header}.{payload}.AAAA"):
            assert_invalid_token(call(view, bad))

    def test_it_refuses_an_expired_token_beyond_the_leeway(self, clock):
        view = protected("demo:read", jwks_provider=FakeJWKS(jwks(RSA_KEY)))
        token = sign(exp=int(clock()) + 60)
        clock.advance(80)  # Expired 20 s ago: within the 30 s leeway.
        assert call(view, token).status_code == 200
        clock.advance(20)
        assert_invalid_token(call(view, token), "expired")

    def test_it_refuses_tokens_without_exp_or_not_yet_valid(self, clock):
        view = protected("demo:read", jwks_provider=FakeJWKS(jwks(RSA_KEY)))
        now = int(clock())
        assert_invalid_token(call(view, sign(exp=None)), "expiry")
        assert_invalid_token(call(view, sign(nbf=now + 120)), "not valid yet")
        assert_invalid_token(call(view, sign(iat=now + 120)), "future")

    def test_it_refuses_a_wrong_issuer_or_audience(self):
        view = protected("demo:read", jwks_provider=FakeJWKS(jwks(RSA_KEY)))
        assert_invalid_token(call(view, sign(iss="https://evil.example")), "issuer")
        assert_invalid_token(call(view, sign(aud="https://other.example")), "audience")
        assert_invalid_token(call(view, sign(aud=None)), "audience")

    def test_it_refuses_a_token_that_is_not_an_access_token(self):
        view = protected("demo:read", jwks_provider=FakeJWKS(jwks(RSA_KEY)))
        assert_invalid_token(call(view, sign(header={"typ": "JWT"})), "at+jwt")
        assert call(view, sign(header={"typ": "application/at+jwt"})).status_code == 200

    def test_it_refuses_alg_none_and_hmac_with_the_public_key(self):
        view = protected("demo:read", jwks_provider=FakeJWKS(jwks(RSA_KEY)))
        payload = sign().split(".")[1]
        unsigned = b64({"alg": "none", "typ": "at+jwt", "kid": "rsa-1"}) + f".{payload}."
        assert_invalid_token(call(view, unsigned), "algorithm")
        # The classic confusion: HS256 keyed with the RSA public key.
        signing_input = b64({"alg": "HS256", "typ": "at+jwt", "kid": "rsa-1"}) + f".{payload}"
        mac = hmac.new(RSA_KEY.as_pem(private=False), signing_input.encode(), hashlib.sha256)
        confused = signing_input + "." + b64url(mac.digest())
        assert_invalid_token(call(view, confused), "algorithm")

    def test_it_refuses_an_algorithm_that_does_not_match_the_key(self):
        view = protected("demo:read", jwks_provider=FakeJWKS(jwks(RSA_KEY)))
        assert_invalid_token(call(view, sign(EC_KEY, header={"kid": "rsa-1"})))

    def test_it_answers_a_missing_scope_with_403_insufficient_scope(self):
        view = protected("demo:read", "demo:write", jwks_provider=FakeJWKS(jwks(RSA_KEY)))
        response = call(view, sign())
        assert response.status_code == 403
        params = challenge(response)
        assert params["error"] == "insufficient_scope"
        assert params["scope"] == "demo:read demo:write"
        assert json.loads(response.content)["error"] == "insufficient_scope"

    def test_it_answers_503_while_the_keys_cannot_be_fetched(self):
        view = protected("demo:read", jwks_provider=FakeJWKS(OSError("connection refused")))
        response = call(view, sign())
        assert response.status_code == 503
        assert response["Retry-After"]


class TestJWKSRefetch:
    def test_it_fetches_once_and_caches(self):
        provider = FakeJWKS(jwks(RSA_KEY))
        view = protected("demo:read", jwks_provider=provider)
        for _ in range(5):
            assert call(view, sign()).status_code == 200
        assert provider.calls == 1

    def test_it_refetches_on_an_unknown_kid_at_most_once_a_minute(self, clock):
        provider = FakeJWKS(jwks(RSA_KEY))
        view = protected("demo:read", jwks_provider=provider)
        assert call(view, sign()).status_code == 200
        clock.advance(61)
        # The issuer rotated to a new key: one refetch finds it.
        provider.document = jwks(RSA_KEY, ROTATED_KEY)
        assert call(view, sign(ROTATED_KEY)).status_code == 200
        assert provider.calls == 2
        # Forged kids do not turn into a fetch per request.
        for _ in range(3):
            assert_invalid_token(call(view, sign(ROTATED_KEY, header={"kid": "nope"})), "unknown")
        assert provider.calls == 2
        clock.advance(61)
        assert_invalid_token(call(view, sign(ROTATED_KEY, header={"kid": "nope"})), "unknown")
        assert provider.calls == 3

    def test_it_refetches_after_max_age_and_keeps_old_keys_when_that_fails(self, clock):
        provider = FakeJWKS(jwks(RSA_KEY))
        view = protected("demo:read", jwks_provider=provider)
        assert call(view, sign()).status_code == 200
        clock.advance(resource.JWKS_MAX_AGE_SECONDS + 1)
        provider.document = OSError("issuer down")
        assert call(view, sign()).status_code == 200
        assert provider.calls == 2

    def test_it_fetches_the_jwks_over_http(self, issuer):
        issuer.jwks = jwks(RSA_KEY)
        view = protected("demo:read", jwks_url=issuer.url + "/.well-known/jwks.json")
        assert call(view, sign()).status_code == 200
        assert call(view, sign()).status_code == 200
        assert [r["path"] for r in issuer.requests] == ["/.well-known/jwks.json"]

    def test_it_defaults_to_the_issuers_well_known_jwks(self, issuer, settings):
        issuer.jwks = jwks(RSA_KEY)
        settings.KEYWARD_ISSUER = issuer.url
        settings.KEYWARD_DEFAULT_AUDIENCE = AUDIENCE

        @require_scopes("demo:read")
        def view(request):
            return JsonResponse({})

        assert call(view, sign(iss=issuer.url)).status_code == 200
        assert issuer.requests[0]["path"] == "/.well-known/jwks.json"


class FakeIssuer:
    """A local HTTP server playing the issuer: JWKS and introspection."""

    def __init__(self):
        self.jwks: dict = {"keys": []}
        self.answer: dict | None = {"active": False}
        self.status = 200
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                fake.requests.append({"path": self.path})
                self.reply(200, fake.jwks)

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                fake.requests.append(
                    {
                        "path": self.path,
                        "authorization": self.headers.get("Authorization"),
                        "form": dict(urllib.parse.parse_qsl(body)),
                    }
                )
                self.reply(fake.status, fake.answer)

            def reply(self, status, document):
                data = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def issuer():
    fake = FakeIssuer()
    yield fake
    fake.close()


def introspected(issuer, *scopes, **options):
    return protected(
        *scopes,
        mode="introspect",
        introspection_url=issuer.url + "/token-srv/introspect",
        introspection_auth=("resource-server", "s3cret/+="),
        **options,
    )


def active_answer(clock, **fields) -> dict:
    return {
        "active": True,
        "scope": "demo:read",
        "client_id": "client-1",
        "iss": ISSUER,
        "aud": [AUDIENCE],
        "exp": int(clock()) + 3600,
        **fields,
    }


class TestIntrospectionMode:
    def test_it_introspects_with_client_credentials_and_sets_the_claims(self, issuer, clock):
        issuer.answer = active_answer(clock)
        response = call(introspected(issuer, "demo:read"), "opaque-or-jwt")
        assert response.status_code == 200
        assert json.loads(response.content)["claims"]["client_id"] == "client-1"
        request = issuer.requests[0]
        assert request["path"] == "/token-srv/introspect"
        assert request["form"] == {"token": "opaque-or-jwt", "token_type_hint": "access_token"}
        credentials = base64.b64decode(request["authorization"].removeprefix("Basic ")).decode()
        assert credentials == "resource-server:s3cret%2F%2B%3D"

    def test_it_refuses_inactive_foreign_and_underscoped_tokens(self, issuer, clock):
        view = introspected(issuer, "demo:read")
        issuer.answer = {"active": False}
        assert_invalid_token(call(view, "t1"), "not active")
        issuer.answer = active_answer(clock, aud="https://other.example")
        assert_invalid_token(call(view, "t2"), "audience")
        issuer.answer = active_answer(clock, iss="https://evil.example")
        assert_invalid_token(call(view, "t3"), "issuer")
        issuer.answer = active_answer(clock, scope="orders:read")
        response = call(view, "t4")
        assert response.status_code == 403
        assert challenge(response)["error"] == "insufficient_scope"

    def test_it_caches_answers_for_at_most_a_minute(self, issuer, clock):
        view = introspected(issuer, "demo:read")
        issuer.answer = active_answer(clock)
        assert call(view, "t").status_code == 200
        issuer.answer = {"active": False}  # Revoked meanwhile.
        clock.advance(59)
        assert call(view, "t").status_code == 200
        assert len(issuer.requests) == 1
        clock.advance(2)
        assert_invalid_token(call(view, "t"), "not active")
        assert len(issuer.requests) == 2

    def test_it_never_caches_past_the_tokens_exp(self, issuer, clock):
        view = introspected(issuer, "demo:read")
        issuer.answer = active_answer(clock, exp=int(clock()) + 10)
        assert call(view, "t").status_code == 200
        clock.advance(11)
        issuer.answer = {"active": False}
        assert_invalid_token(call(view, "t"))
        assert len(issuer.requests) == 2

    def test_it_answers_503_when_introspection_fails(self, issuer):
        issuer.status = 500
        issuer.answer = {"error": "server_error"}
        response = call(introspected(issuer, "demo:read"), "t")
        assert response.status_code == 503
        # A failure is not cached.
        assert call(introspected(issuer, "demo:read"), "t").status_code == 503
        assert len(issuer.requests) == 2


def signing_key_table_exists() -> bool:
    return "tokens_signingkey" in connection.introspection.table_names()


@pytest.mark.django_db
class TestProtectedResourceDemo:
    def test_it_refuses_a_request_without_a_token(self, client):
        response = client.get("/api/protected-resource")
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer realm=")

    def test_it_answers_with_the_callers_client_id_and_scope(self, client, settings):
        if not signing_key_table_exists():
            pytest.skip("tokens.SigningKey has no migration yet")
        from tokens.models import SigningKey

        SigningKey.objects.create(
            kid=RSA_KEY.kid,
            algorithm="RS256",
            private_key_encrypted="not used by the resource kit",
            public_jwk=RSA_KEY.as_dict(private=False),
            status="active",
        )
        token = sign(
            iss=settings.KEYWARD_ISSUER, aud=settings.KEYWARD_DEFAULT_AUDIENCE, scope="demo:read"
        )
        response = client.get("/api/protected-resource", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 200
        body = response.json()
        assert body["client_id"] == "client-1" and body["scope"] == "demo:read"
        assert body["message"]

    def test_it_refuses_a_token_without_demo_read(self, client, settings):
        if not signing_key_table_exists():
            pytest.skip("tokens.SigningKey has no migration yet")
        from tokens.models import SigningKey

        SigningKey.objects.create(
            kid=RSA_KEY.kid,
            algorithm="RS256",
            private_key_encrypted="not used by the resource kit",
            public_jwk=RSA_KEY.as_dict(private=False),
            status="active",
        )
        token = sign(
            iss=settings.KEYWARD_ISSUER, aud=settings.KEYWARD_DEFAULT_AUDIENCE, scope="orders:read"
        )
        response = client.get("/api/protected-resource", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 403

    def test_it_accepts_a_token_from_the_token_endpoint(self, client, make_client, make_scope):
        from tokens.keys import key_ring_reset

        key_ring_reset()  # The token service caches its keys per process, across tests.
        demo_client, secret = make_client(scopes=[make_scope("demo:read")])
        issued = client.post(
            "/token-srv/token",
            "grant_type=client_credentials&scope=demo%3Aread",
            content_type="application/x-www-form-urlencoded",
            HTTP_AUTHORIZATION="Basic "
            + base64.b64encode(f"{demo_client.client_id}:{secret}".encode()).decode(),
        )
        assert issued.status_code == 200, issued.content
        token = issued.json()["access_token"]
        response = client.get("/api/protected-resource", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 200, response.content
        assert response.json()["client_id"] == demo_client.client_id
