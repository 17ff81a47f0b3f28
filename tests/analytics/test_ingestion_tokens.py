"""The ingestion-token pages: admins only, the token shown once and stored as a keyed hash,
every change POST + CSRF with its audit row."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client as BrowserClient
from django.urls import reverse
from django.utils import timezone

from analytics.ingestion_tokens import (
    TokenRefused,
    ingestion_token_authenticate,
    ingestion_token_create,
)
from analytics.models import IngestionToken
from audit.models import AdminAction
from audit.services import Actor
from clients.secrets import secret_hash

pytestmark = pytest.mark.django_db

LIST = reverse("analytics:ingestion_tokens")
NEW = reverse("analytics:ingestion_token_new")
TOKEN_RE = re.compile(r"kwing_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")
FORM = {"name": "Keycloak production", "source": "keycloak-prod", "expires_in_days": "90"}


def revoke_url(token: IngestionToken) -> str:
    return reverse("analytics:ingestion_token_revoke", args=[token.pk])


@pytest.fixture
def existing(admin_user) -> IngestionToken:
    token, _plain = ingestion_token_create(
        actor=Actor(label=admin_user.username, user=admin_user), name="Okta EU", source="okta-eu"
    )
    return token


class TestTheList:
    def test_admins_see_each_token_without_its_secret(self, admin_client, existing):
        response = admin_client.get(LIST)
        assert response.status_code == 200
        page = response.content.decode()
        for text in ("Okta EU", "okta-eu", existing.hint, "ada-admin", "never", "active"):
            assert text in page
        assert existing.token_hash not in page
        assert not TOKEN_RE.search(page)

    @pytest.mark.parametrize(
        ("persona", "status"), [("anonymous", 302), ("viewer", 403), ("operator", 403)]
    )
    def test_only_admins_may_open_it(self, persona_clients, persona, status):
        assert persona_clients[persona].get(LIST).status_code == status

    def test_admins_find_it_in_the_navigation(self, admin_client, viewer_client):
        assert f'href="{LIST}"' in admin_client.get("/").content.decode()
        assert f'href="{LIST}"' not in viewer_client.get("/").content.decode()

    def test_it_shows_revoked_and_expired_tokens_as_such(self, admin_client, admin_user, existing):
        IngestionToken.objects.filter(pk=existing.pk).update(
            expires_at=timezone.now() - timedelta(days=1)
        )
        old, _plain = ingestion_token_create(
            actor=Actor(label="ada", user=admin_user), name="Old", source="auth0"
        )
        IngestionToken.objects.filter(pk=old.pk).update(revoked_at=timezone.now())
        page = admin_client.get(LIST).content.decode()
        assert "badge-expired" in page
        assert "badge-revoked" in page


class TestCreate:
    def test_it_shows_the_token_once_and_stores_only_its_keyed_hash(self, admin_client):
        response = admin_client.post(NEW, FORM, follow=True)
        assert response.redirect_chain[0][1] == 302  # POST-redirect-GET
        assert response["Cache-Control"] == "no-store"
        page = response.content.decode()
        (plain,) = set(TOKEN_RE.findall(page))
        token = IngestionToken.objects.get()
        assert (token.name, token.source, token.created_by.username) == (
            "Keycloak production",
            "keycloak-prod",
            "ada-admin",
        )
        assert token.token_hash == secret_hash(plain) != plain
        assert plain.startswith(f"kwing_{token.lookup}_")
        assert timedelta(days=89) < token.expires_at - timezone.now() <= timedelta(days=90)
        assert "curl" in page and "/analytics/api/ingest?format=keycloak" in page
        # Never again: the list shows only the hint, and a reload says it was shown.
        assert plain not in admin_client.get(LIST).content.decode()
        again = admin_client.get(response.redirect_chain[0][0]).content.decode()
        assert plain not in again and "was already shown" in again
        assert ingestion_token_authenticate(plain) == token

    def test_it_records_the_creation_on_the_audit_trail_without_the_token(self, admin_client):
        response = admin_client.post(NEW, {**FORM, "expires_in_days": ""}, follow=True)
        (plain,) = set(TOKEN_RE.findall(response.content.decode()))
        token = IngestionToken.objects.get()
        action = AdminAction.objects.get(action="ingestion_token.create")
        assert (action.actor_label, action.target_type, action.target_id) == (
            "ada-admin",
            "ingestion_token",
            str(token.pk),
        )
        assert action.after == {
            "name": "Keycloak production",
            "source": "keycloak-prod",
            "hint": token.hint,
            "expires_at": None,
        }
        assert plain.rsplit("_", 1)[1] not in repr(action.after)

    @pytest.mark.parametrize(
        ("field", "value", "words"),
        [
            ("source", "Keycloak Prod", "Use lowercase letters"),
            ("source", "keyward", "reserved for Keyward"),
            ("name", "", "This field is required"),
            ("expires_in_days", "7", "Select a valid choice"),
        ],
    )
    def test_it_refuses_a_bad_form_and_creates_nothing(self, admin_client, field, value, words):
        response = admin_client.post(NEW, {**FORM, field: value})
        assert response.status_code == 400
        assert words in response.content.decode()
        assert not IngestionToken.objects.exists()
        assert not AdminAction.objects.filter(action="ingestion_token.create").exists()

    @pytest.mark.parametrize("persona", ["viewer", "operator"])
    def test_non_admins_cannot_create_tokens(self, persona_clients, persona):
        assert persona_clients[persona].post(NEW, FORM).status_code == 403
        assert not IngestionToken.objects.exists()

    def test_it_refuses_a_get(self, admin_client):
        assert admin_client.get(NEW).status_code == 405

    def test_it_needs_the_csrf_token(self, admin_user):
        browser = BrowserClient(enforce_csrf_checks=True)
        browser.force_login(admin_user)
        assert browser.post(NEW, FORM).status_code == 403
        assert not IngestionToken.objects.exists()


class TestRevoke:
    def test_it_revokes_at_once_and_records_it(self, admin_client, admin_user):
        token, plain = ingestion_token_create(
            actor=Actor(label="ada", user=admin_user), name="Auth0", source="auth0"
        )
        response = admin_client.post(revoke_url(token))
        assert response.status_code == 302
        assert response["Location"] == LIST
        token.refresh_from_db()
        assert token.status == "revoked"
        assert token.revoked_by == admin_user
        with pytest.raises(TokenRefused, match="token revoked"):
            ingestion_token_authenticate(plain)
        action = AdminAction.objects.get(action="ingestion_token.revoke")
        assert action.target_id == str(token.pk)
        assert (action.before, action.after["status"]) == ({"status": "active"}, "revoked")

    def test_revoking_twice_records_it_once(self, admin_client, existing):
        admin_client.post(revoke_url(existing))
        admin_client.post(revoke_url(existing))
        assert AdminAction.objects.filter(action="ingestion_token.revoke").count() == 1

    @pytest.mark.parametrize(
        ("persona", "status"), [("anonymous", 302), ("viewer", 403), ("operator", 403)]
    )
    def test_only_admins_may_revoke(self, persona_clients, existing, persona, status):
        assert persona_clients[persona].post(revoke_url(existing)).status_code == status
        existing.refresh_from_db()
        assert existing.revoked_at is None

    def test_it_refuses_a_get(self, admin_client, existing):
        assert admin_client.get(revoke_url(existing)).status_code == 405

    def test_an_unknown_token_is_a_404(self, admin_client):
        url = reverse(
            "analytics:ingestion_token_revoke", args=["00000000-0000-4000-8000-000000000000"]
        )
        assert admin_client.post(url).status_code == 404
