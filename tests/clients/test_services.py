from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError

from audit.models import AdminAction
from audit.services import Actor
from clients import services
from clients.models import Client, ClientSecret, ScopeGrant
from clients.secrets import SECRET_PREFIX, secret_hash


class TestClientRegister:
    def test_it_creates_client_secret_grants_and_audit_rows(self, make_scope):
        scope = make_scope("orders:read")
        client, plain = services.client_register(
            actor=Actor.cli(), name="Billing", environment="production", scopes=[scope]
        )
        assert len(client.client_id) >= 20
        assert plain.startswith(SECRET_PREFIX) and len(plain) >= len(SECRET_PREFIX) + 43
        stored = ClientSecret.objects.get(client=client)
        assert stored.secret_hash == secret_hash(plain) and plain not in stored.secret_hash
        assert stored.hint == f"{SECRET_PREFIX}…{plain[-4:]}"
        assert ScopeGrant.objects.filter(client=client, scope=scope).exists()
        actions = set(
            AdminAction.objects.filter(target_id=client.client_id).values_list("action", flat=True)
        )
        assert actions == {"client.register", "scope.grant", "secret.create"}

    def test_it_refuses_bad_networks_and_writes_nothing(self, db):
        with pytest.raises(ValidationError):
            services.client_register(actor=Actor.cli(), name="X", allowed_networks=["10.0.0.0/33"])
        assert not Client.objects.exists() and not AdminAction.objects.exists()

    def test_it_refuses_lifetime_out_of_bounds(self, db):
        with pytest.raises(ValidationError):
            services.client_register(actor=Actor.cli(), name="X", access_token_lifetime=59)


NEW_YEAR = datetime(2027, 1, 1, tzinfo=UTC)


def expires_on_new_year(*, client: Client, created_at: datetime) -> datetime | None:
    """A stand-in for the secret lifecycle's policy, named by the setting in a test."""
    return NEW_YEAR if client.environment == "production" else None


class TestNewSecretExpiry:
    def test_it_asks_the_function_the_setting_names(self, db, settings):
        settings.KEYWARD_NEW_SECRET_EXPIRY = f"{__name__}.expires_on_new_year"
        production, _ = services.client_register(
            actor=Actor.cli(), name="Billing", environment="production"
        )
        development, _ = services.client_register(actor=Actor.cli(), name="Sandbox")
        assert production.secrets.get().expires_at == NEW_YEAR
        assert development.secrets.get().expires_at is None

    def test_it_leaves_new_secrets_without_expiry_when_no_function_is_named(self, db, settings):
        settings.KEYWARD_NEW_SECRET_EXPIRY = ""
        client, _ = services.client_register(
            actor=Actor.cli(), name="Billing", environment="production"
        )
        assert client.secrets.get().expires_at is None


class TestSecrets:
    def test_it_hashes_each_secret_to_its_own_keyed_digest(self):
        stored = secret_hash("kwsec_abc")
        assert secret_hash("kwsec_abc") == stored
        assert secret_hash("kwsec_abd") != stored


class TestScopeDelete:
    def test_it_refuses_while_granted_naming_holders(self, make_scope, make_client):
        scope = make_scope("orders:write")
        make_client("Shop", scopes=[scope])
        with pytest.raises(services.ScopeInUse, match="Shop"):
            services.scope_delete(actor=Actor.cli(), scope=scope)


class TestAuditTrail:
    def test_it_is_append_only(self, make_client):
        make_client()
        row = AdminAction.objects.first()
        with pytest.raises(PermissionError):
            row.save()
        with pytest.raises(PermissionError):
            row.delete()
        with pytest.raises(PermissionError):
            AdminAction.objects.all().delete()


class TestAuditTrailInTheDatabase:
    def test_it_refuses_raw_updates_and_deletes_on_postgresql(self, make_client):
        from django.db import DatabaseError, connection, transaction

        make_client()
        for statement in (
            "UPDATE audit_adminaction SET action = 'x'",
            "DELETE FROM audit_adminaction",
        ):
            with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cur:
                cur.execute(statement)
        assert AdminAction.objects.count() == 2

    def test_it_lets_a_deleted_users_actions_keep_their_label(self, admin_user):
        services.scope_create(actor=Actor(label=admin_user.username, user=admin_user), name="a:b")
        admin_user.delete()
        row = AdminAction.objects.get(action="scope.create")
        assert row.actor is None and row.actor_label == "ada-admin"
