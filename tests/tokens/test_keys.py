from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import orjson
import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.urls import resolve, reverse
from joserfc import jws
from jwt import PyJWKSet

from audit.models import AdminAction
from audit.services import Actor
from tokens.keys import (
    KEY_TYPES,
    KeyRing,
    LoadedKey,
    _generate,
    key_ring,
    key_ring_reset,
    private_key_decrypt,
    signing_key_new,
)
from tokens.middleware import ROUTES
from tokens.models import NEXT_KEY_PUBLISH_LEAD, SigningKey
from tokens.services import signing_key_publish_next, signing_key_rotate


def _verify_with_jwks(token: str, jwks: dict, settings) -> dict:
    keys = {key.key_id: key for key in PyJWKSet.from_dict(jwks).keys}
    header = jwt.get_unverified_header(token)
    return jwt.decode(
        token,
        keys[header["kid"]].key,
        algorithms=[header["alg"]],
        audience=settings.KEYWARD_DEFAULT_AUDIENCE,
        issuer=settings.KEYWARD_ISSUER,
    )


def _travel_past_lead(time_machine) -> None:
    time_machine.move_to(datetime.now(UTC) + NEXT_KEY_PUBLISH_LEAD)


def _rotate_after_lead(time_machine, algorithm: str = "ES256"):
    """Publish a next key if there is none, wait out its lead time, rotate."""
    signing_key_publish_next(actor=Actor.cli(), algorithm=algorithm)
    _travel_past_lead(time_machine)
    return signing_key_rotate(actor=Actor.cli(), algorithm=algorithm)


@pytest.mark.django_db
class TestSigningKeyModel:
    def test_it_creates_the_first_key_on_first_use(self, settings):
        assert not SigningKey.objects.exists()
        ring = key_ring()
        key = SigningKey.objects.get()
        assert key.status == SigningKey.Status.ACTIVE
        assert key.algorithm == settings.KEYWARD_SIGNING_ALGORITHM == "RS256"
        assert ring.active.kid == key.kid

    def test_it_encrypts_the_private_key_at_rest(self):
        key = signing_key_new(algorithm="ES256", status=SigningKey.Status.NEXT)
        assert "PRIVATE KEY" not in key.private_key_encrypted
        assert b"PRIVATE KEY" in private_key_decrypt(key.private_key_encrypted)
        assert "d" not in key.public_jwk  # public half only
        assert key.public_jwk["kid"] == key.kid

    def test_it_allows_one_active_key_only(self):
        signing_key_new(algorithm="ES256", status=SigningKey.Status.ACTIVE).save()
        with pytest.raises(IntegrityError), transaction.atomic():
            signing_key_new(algorithm="ES256", status=SigningKey.Status.ACTIVE).save()


@pytest.mark.django_db
class TestRotation:
    def test_it_promotes_a_new_key_the_first_time(self):
        rotation = signing_key_rotate(actor=Actor.cli(), algorithm="ES256")
        assert rotation.active.status == SigningKey.Status.ACTIVE
        assert rotation.next.status == SigningKey.Status.NEXT
        assert rotation.retired is None

    def test_it_moves_next_to_active_and_active_to_retired(self, time_machine):
        key_ring()
        first = SigningKey.objects.get()
        one = _rotate_after_lead(time_machine)
        two = _rotate_after_lead(time_machine)
        first.refresh_from_db()
        assert first.status == SigningKey.Status.RETIRED
        assert two.active.kid == one.next.kid
        assert two.retired.kid == one.active.kid
        assert SigningKey.objects.filter(status="active").count() == 1
        assert SigningKey.objects.filter(status="next").count() == 1

    def test_it_records_an_admin_action(self):
        signing_key_rotate(actor=Actor.cli(), algorithm="RS256")
        action = AdminAction.objects.get(action="signing_key.rotate")
        assert action.actor_label == "cli"
        assert action.after["active"]

    def test_it_signs_with_the_new_key_in_this_process_at_once(self, get_token, time_machine):
        before = jwt.get_unverified_header(get_token()["access_token"])["kid"]
        rotation = _rotate_after_lead(time_machine)
        after = jwt.get_unverified_header(get_token()["access_token"])
        assert after["kid"] == rotation.active.kid != before

    def test_it_runs_from_the_command_line(self, capsys):
        call_command("rotate_signing_key", "--algorithm", "EdDSA")
        assert "active:" in capsys.readouterr().out
        assert SigningKey.objects.get(status="next").algorithm == "EdDSA"


@pytest.mark.django_db
class TestJwks:
    def test_it_publishes_next_active_and_retired_keys(self, http, time_machine):
        key_ring()
        _rotate_after_lead(time_machine)
        response = http.get("/.well-known/jwks.json")
        assert response.status_code == 200
        assert "max-age=300" in response["Cache-Control"]
        kids = {key["kid"] for key in response.json()["keys"]}
        assert kids == set(SigningKey.objects.values_list("kid", flat=True))
        for key in response.json()["keys"]:
            assert not {"d", "p", "q"} & set(key)
            assert key["use"] == "sig"

    def test_it_drops_keys_retired_longer_than_a_token_lifetime(self, http, time_machine):
        key_ring()
        old = SigningKey.objects.get()
        _rotate_after_lead(time_machine)
        old.refresh_from_db()
        SigningKey.objects.filter(pk=old.pk).update(
            retired_at=old.retired_at - timedelta(seconds=86400 + 301)
        )
        kids = {key["kid"] for key in http.get("/.well-known/jwks.json").json()["keys"]}
        assert old.kid not in kids

    def test_old_tokens_still_verify_through_rotations(
        self, http, get_token, settings, time_machine
    ):
        key_ring()
        signing_key_publish_next(actor=Actor.cli(), algorithm="ES256")
        _travel_past_lead(time_machine)
        old_token = get_token()["access_token"]
        signing_key_rotate(actor=Actor.cli(), algorithm="ES256")
        # Two rotations within one token lifetime: the second skips the lead time on purpose.
        signing_key_rotate(actor=Actor.cli(), algorithm="EdDSA", force=True)
        new_token = get_token()["access_token"]
        jwks = http.get("/.well-known/jwks.json").json()
        assert _verify_with_jwks(old_token, jwks, settings)["jti"]
        assert _verify_with_jwks(new_token, jwks, settings)["jti"]
        assert jwt.get_unverified_header(new_token)["alg"] == "ES256"

    def test_it_verifies_eddsa_tokens(self, http, get_token, settings):
        settings.KEYWARD_SIGNING_ALGORITHM = "EdDSA"
        token = get_token()["access_token"]
        assert _verify_with_jwks(token, http.get("/.well-known/jwks.json").json(), settings)


class TestSigning:
    CLAIMS = {"iss": "https://keyward.example", "sub": "svc", "jti": "j" * 22, "exp": 2}

    @staticmethod
    def _ring(algorithm: str) -> KeyRing:
        key = _generate(algorithm)
        pem = key.as_pem(private=True)
        loaded = LoadedKey.imported(kid="k1", algorithm=algorithm, status="active", data=pem)
        return KeyRing(state=(), keys={loaded.kid: loaded}, active=loaded)

    def test_it_signs_byte_for_byte_as_joserfc_serialize_compact(self):
        # RSASSA-PKCS1-v1_5 is deterministic, so the two must be the same string.
        ring = self._ring("RS256")
        key = ring.active
        expected = jws.serialize_compact(
            key.header, orjson.dumps(self.CLAIMS), key.jwk, registry=key.registry
        )
        assert ring.sign(self.CLAIMS) == expected

    @pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
    def test_it_signs_what_joserfc_verifies_with_the_public_key(self, algorithm):
        ring = self._ring(algorithm)
        key = ring.active
        public = KEY_TYPES[algorithm].import_key(key.jwk.as_dict(private=False))
        token = ring.sign(self.CLAIMS)
        verified = jws.deserialize_compact(token, public, algorithms=[algorithm])
        assert verified.headers() == {"alg": algorithm, "typ": "at+jwt", "kid": key.kid}
        assert orjson.loads(verified.payload) == self.CLAIMS


@pytest.mark.django_db
class TestMetadata:
    def test_it_describes_the_server(self, http, settings):
        response = http.get("/.well-known/oauth-authorization-server")
        assert response.status_code == 200
        body = response.json()
        issuer = settings.KEYWARD_ISSUER
        assert body["issuer"] == issuer
        assert body["token_endpoint"] == issuer + "/token-srv/token"
        assert body["introspection_endpoint"] == issuer + "/token-srv/introspect"
        assert body["revocation_endpoint"] == issuer + "/token-srv/revoke"
        assert body["jwks_uri"] == issuer + "/.well-known/jwks.json"
        assert body["grant_types_supported"] == ["client_credentials"]
        assert body["token_endpoint_auth_methods_supported"] == [
            "client_secret_basic",
            "client_secret_post",
        ]
        assert body["revocation_endpoint_auth_methods_supported"]
        assert body["introspection_endpoint_auth_methods_supported"] == [
            "client_secret_basic",
            "client_secret_post",
        ]
        assert body["access_token_signing_alg_values_supported"] == ["RS256", "ES256", "EdDSA"]
        assert body["response_types_supported"] == []


class TestShortcutMiddleware:
    def test_it_serves_each_path_with_the_view_the_urlconf_resolves_it_to(self):
        # Both come from tokens.urls.TOKEN_SERVICE; this checks where keyward/urls.py mounts it.
        assert ROUTES
        for path, route in ROUTES.items():
            assert resolve(path).func is route.callback


@pytest.mark.django_db
class TestKeysPage:
    def test_it_lists_keys_for_admins(self, admin_client):
        key_ring()
        response = admin_client.get(reverse("tokens:keys"))
        assert response.status_code == 200
        assert SigningKey.objects.get().kid in response.content.decode()

    @pytest.mark.parametrize("persona", ["viewer", "operator"])
    def test_it_refuses_other_roles(self, persona_clients, persona):
        assert persona_clients[persona].get(reverse("tokens:keys")).status_code == 403
        response = persona_clients[persona].post(reverse("tokens:rotate"), {"algorithm": "ES256"})
        assert response.status_code == 403
        assert not AdminAction.objects.filter(action="signing_key.rotate").exists()

    def test_it_sends_anonymous_users_to_login(self, anonymous_client):
        assert anonymous_client.get(reverse("tokens:keys")).status_code == 302

    def test_it_rotates_on_post(self, admin_client):
        response = admin_client.post(reverse("tokens:rotate"), {"algorithm": "ES256"})
        assert response.status_code == 302
        assert SigningKey.objects.get(status="next").algorithm == "ES256"
        action = AdminAction.objects.get(action="signing_key.rotate")
        assert action.actor_label == "ada-admin"

    def test_it_refuses_get_on_rotate(self, admin_client):
        assert admin_client.get(reverse("tokens:rotate")).status_code == 405

    def test_it_refuses_an_unknown_algorithm(self, admin_client):
        admin_client.post(reverse("tokens:rotate"), {"algorithm": "HS256"})
        assert not SigningKey.objects.exists()


def test_the_ring_reset_is_idempotent():
    key_ring_reset()
    key_ring_reset()
