"""manage.py rotate_secret and revoke_secret."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AdminAction
from audit.services import Actor
from clients.models import ClientSecret
from clients.secrets import secret_hash
from security import services

from .conftest import T0, days


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def exit_status(monkeypatch):
    """The process exit status, through the same path as `manage.py ...`."""
    from django.core.management import base, load_command_class

    # run_from_argv closes every connection when done, the test's own included.
    monkeypatch.setattr(base.connections, "close_all", lambda: None)

    def run_argv(*args: str) -> int:
        command = load_command_class("security", args[0])
        with pytest.raises(SystemExit) as exc:
            command.run_from_argv(["manage.py", *args])
        return exc.value.code

    return run_argv


class TestRotateSecret:
    def test_it_prints_the_new_secret_once_as_json(self, prod_client, clock):
        client, old_plain = prod_client
        out, _ = run("rotate_secret", client.client_id, "--grace", "1h", "--json")
        data = json.loads(out)
        assert set(data) == {"client_id", "client_secret", "secret_id", "old_secrets_expire_at"}
        assert data["client_id"] == client.client_id
        new = ClientSecret.objects.get(secret_hash=secret_hash(data["client_secret"]))
        assert new.pk == data["secret_id"]
        assert data["old_secrets_expire_at"] == (T0 + days(1 / 24)).isoformat()
        row = AdminAction.objects.get(action="secret.rotate")
        assert row.actor_label == "cli" and row.after["grace_seconds"] == 3600

    def test_it_defaults_to_24_hours_and_prints_text(self, prod_client, clock):
        client, old_plain = prod_client
        out, err = run("rotate_secret", client.client_id)
        assert "client_secret: kwsec_" in out and "not shown again" in err
        old = ClientSecret.objects.get(secret_hash=secret_hash(old_plain))
        assert old.expires_at == T0 + days(1)

    def test_grace_zero_reports_the_old_secret_expired_now(self, prod_client, clock):
        client, _ = prod_client
        out, _ = run("rotate_secret", client.client_id, "--grace", "0", "--json")
        assert json.loads(out)["old_secrets_expire_at"] == T0.isoformat()

    def test_without_other_valid_secrets_old_expiry_is_null(self, prod_client, clock):
        client, _ = prod_client
        services.client_secret_revoke(actor=Actor.cli(), secret=client.secrets.get())
        out, _ = run("rotate_secret", client.client_id, "--json")
        assert json.loads(out)["old_secrets_expire_at"] is None

    @pytest.mark.parametrize("grace", ["forever", "5", "-1h", "91d", "1w", ""])
    def test_bad_grace_exits_2_and_writes_nothing(self, prod_client, grace):
        client, _ = prod_client
        before = AdminAction.objects.count()
        with pytest.raises(CommandError, match="--grace") as exc:
            run("rotate_secret", client.client_id, f"--grace={grace}")
        assert exc.value.returncode == 2
        assert client.secrets.count() == 1 and AdminAction.objects.count() == before

    def test_unknown_client_exits_2(self, db, exit_status):
        assert exit_status("rotate_secret", "nope") == 2

    def test_a_fourth_valid_secret_exits_2_with_the_reason(self, prod_client, clock):
        client, _ = prod_client
        run("rotate_secret", client.client_id, "--grace", "7d")
        run("rotate_secret", client.client_id, "--grace", "7d")
        with pytest.raises(CommandError, match="already has 3 valid secrets") as exc:
            run("rotate_secret", client.client_id, "--grace", "7d")
        assert exc.value.returncode == 2 and client.secrets.count() == 3


class TestRevokeSecret:
    def test_it_revokes_and_warns_when_none_is_left(self, prod_client):
        client, _ = prod_client
        secret = client.secrets.get()
        out, err = run("revoke_secret", client.client_id, str(secret.pk))
        secret.refresh_from_db()
        assert secret.is_revoked() and "Revoked secret" in out and "no valid secret" in err
        assert AdminAction.objects.get(action="secret.revoke").actor_label == "cli"

    def test_revoking_again_changes_nothing(self, prod_client):
        client, _ = prod_client
        secret = client.secrets.get()
        run("revoke_secret", client.client_id, str(secret.pk))
        out, _ = run("revoke_secret", client.client_id, str(secret.pk))
        assert "already revoked" in out
        assert AdminAction.objects.filter(action="secret.revoke").count() == 1

    @pytest.mark.parametrize("secret_id", ["abc", "999999", "-1"])
    def test_bad_secret_id_exits_2(self, prod_client, secret_id):
        client, _ = prod_client
        with pytest.raises(CommandError, match="has no secret") as exc:
            run("revoke_secret", client.client_id, secret_id)
        assert exc.value.returncode == 2 and not client.secrets.get().is_revoked()

    def test_another_clients_secret_exits_2(self, prod_client, make_client, exit_status):
        client, _ = prod_client
        other, _ = make_client("Other")
        assert exit_status("revoke_secret", client.client_id, str(other.secrets.get().pk)) == 2
        assert not other.secrets.get().is_revoked()

    def test_unknown_client_exits_2(self, db, exit_status):
        assert exit_status("revoke_secret", "nope", "1") == 2
