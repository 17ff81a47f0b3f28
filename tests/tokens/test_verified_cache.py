"""jwt_verify remembers verified signatures, but never past the key's publication."""

from __future__ import annotations

from tokens import keys
from tokens.keys import jwt_verify, key_ring
from tokens.models import SigningKey


class TestVerifiedTokenCache:
    def test_it_verifies_a_token_once_and_remembers_it(self, get_token):
        token = get_token()["access_token"]
        assert jwt_verify(token)["jti"]
        assert token in keys._verified
        assert jwt_verify(token) == jwt_verify(token)

    def test_it_remembers_nothing_for_a_tampered_token(self, get_token):
        token = get_token()["access_token"]
        header, payload, signature = token.split(".")
        tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
        assert jwt_verify(tampered) is None
        assert tampered not in keys._verified

    def test_it_forgets_a_token_whose_key_is_no_longer_published(self, get_token):
        token = get_token()["access_token"]
        assert jwt_verify(token) is not None
        # The key leaves the key set (as a key retired longer than a token lifetime does).
        SigningKey.objects.all().delete()
        key_ring(force=True)
        assert jwt_verify(token) is None
        assert token not in keys._verified
