"""jwt_verify: our published keys, each pinned to the algorithm it was created for."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from joserfc import jws
from joserfc.jwk import RSAKey

from tokens.keys import jwt_verify, key_ring, private_key_decrypt
from tokens.models import SigningKey


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims() -> str:
    now = int(time.time())
    return json.dumps({"iss": "x", "client_id": "c", "jti": "j", "iat": now, "exp": now + 60})


@pytest.fixture
def rsa_key(db) -> tuple[str, RSAKey]:
    """(kid, private key) of the active RS256 key, as an attacker who had it would sign."""
    kid = key_ring().active.kid
    row = SigningKey.objects.get(kid=kid)
    assert row.algorithm == "RS256"
    return kid, RSAKey.import_key(private_key_decrypt(row.private_key_encrypted))


def _signed(key, alg: str, kid: str, typ: str = "at+jwt") -> str:
    header = {"alg": alg, "typ": typ, "kid": kid}
    return jws.serialize_compact(header, _claims(), key, algorithms=[alg])


class TestJwtVerify:
    def test_it_accepts_the_kids_own_algorithm(self, rsa_key):
        kid, key = rsa_key
        assert jwt_verify(_signed(key, "RS256", kid))["client_id"] == "c"

    def test_it_refuses_another_algorithm_even_with_a_valid_signature(self, rsa_key):
        # PS256 with the same RSA key verifies mathematically; the kid says RS256.
        kid, key = rsa_key
        assert jwt_verify(_signed(key, "PS256", kid)) is None

    def test_it_refuses_alg_none(self, rsa_key):
        kid, _key = rsa_key
        unsigned = (
            _b64({"alg": "none", "typ": "at+jwt", "kid": kid}) + "." + _b64(json.loads(_claims()))
        )
        assert jwt_verify(unsigned + ".") is None

    def test_it_refuses_hmac_keyed_with_the_public_key(self, rsa_key):
        kid, key = rsa_key
        signing_input = (
            _b64({"alg": "HS256", "typ": "at+jwt", "kid": kid}) + "." + _b64(json.loads(_claims()))
        )
        mac = hmac.new(key.as_pem(private=False), signing_input.encode(), hashlib.sha256)
        signature = base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()
        assert jwt_verify(signing_input + "." + signature) is None

    def test_it_refuses_a_jwt_that_is_not_an_access_token(self, rsa_key):
        kid, key = rsa_key
        assert jwt_verify(_signed(key, "RS256", kid, typ="JWT")) is None
