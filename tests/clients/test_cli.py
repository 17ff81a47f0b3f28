from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AdminAction
from clients.models import Client, ClientSecret, Scope, ScopeGrant
from clients.secrets import secret_hash

ROOT = Path(__file__).resolve().parents[2]


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def refused(*args) -> str:
    with pytest.raises(CommandError) as excinfo:
        run(*args)
    assert excinfo.value.returncode == 2
    return str(excinfo.value)


def nothing_written() -> bool:
    return (
        not Client.objects.exists()
        and not AdminAction.objects.filter(action__startswith="client.").exists()
    )


class TestCreateClient:
    def test_it_prints_the_client_id_and_one_time_secret(self, make_scope):
        make_scope("orders:read")
        output = run("create_client", "--name", "Billing", "--scope", "orders:read")
        client = Client.objects.get(name="Billing")
        assert client.client_id in output
        secret = output.split("client_secret:")[1].split()[0]
        assert secret_hash(secret) == ClientSecret.objects.get(client=client).secret_hash
        assert client.scope_names() == ["orders:read"]

    def test_it_prints_exactly_the_json_object(self, db):
        output = run(
            "create_client",
            "--name",
            "Billing",
            "--environment",
            "production",
            "--owner-email",
            "team@example.com",
            "--json",
        )
        data = json.loads(output)
        assert set(data) == {"client_id", "client_secret"}
        client = Client.objects.get(client_id=data["client_id"])
        assert (client.environment, client.owner_email) == ("production", "team@example.com")

    def test_it_writes_the_audit_trail_as_cli(self, make_scope):
        make_scope("orders:read")
        data = json.loads(run("create_client", "--name", "B", "--scope", "orders:read", "--json"))
        rows = AdminAction.objects.filter(target_id=data["client_id"])
        assert {row.action for row in rows} == {"client.register", "scope.grant", "secret.create"}
        assert {row.actor_label for row in rows} == {"cli"} and all(r.actor is None for r in rows)
        assert data["client_secret"] not in json.dumps([[r.before, r.after] for r in rows])

    def test_it_refuses_an_unknown_scope_and_writes_nothing(self, make_scope):
        make_scope("orders:read")
        message = refused(
            "create_client", "--name", "B", "--scope", "orders:read", "--scope", "nope"
        )
        assert "Unknown scope 'nope'" in message
        assert nothing_written() and not ScopeGrant.objects.exists()

    def test_it_refuses_an_unknown_environment(self, db):
        assert "environment" in refused("create_client", "--name", "B", "--environment", "prod")
        assert nothing_written()

    def test_it_refuses_a_bad_owner_email(self, db):
        assert "owner_email" in refused("create_client", "--name", "B", "--owner-email", "nope")
        assert nothing_written()

    def test_it_refuses_an_empty_name(self, db):
        assert "name" in refused("create_client", "--name", "")
        assert nothing_written()


class TestCreateScope:
    def test_it_creates_the_scope(self, db):
        output = run(
            "create_scope",
            "payments:refund",
            "--description",
            "Refunds",
            "--team",
            "pay",
            "--sensitive",
        )
        scope = Scope.objects.get(name="payments:refund")
        assert (scope.description, scope.owning_team, scope.sensitive) == ("Refunds", "pay", True)
        assert "Created scope payments:refund" in output
        row = AdminAction.objects.get(action="scope.create")
        assert (row.actor_label, row.target_id) == ("cli", "payments:refund")

    def test_it_refuses_a_duplicate(self, make_scope):
        make_scope("orders:read")
        assert "already exists" in refused("create_scope", "orders:read")
        assert AdminAction.objects.filter(action="scope.create").count() == 1

    def test_it_refuses_an_invalid_name(self, db):
        assert "name" in refused("create_scope", "Orders Read")
        assert not Scope.objects.exists() and not AdminAction.objects.exists()


class TestGrantScope:
    def test_it_grants_with_a_reason(self, make_client, make_scope):
        client, _ = make_client("Billing")
        make_scope("orders:read")
        run("grant_scope", client.client_id, "orders:read", "--reason", "JIRA-42")
        grant = ScopeGrant.objects.get(client=client)
        assert grant.reason == "JIRA-42" and grant.granted_by is None
        row = AdminAction.objects.get(action="scope.grant", target_id=client.client_id)
        assert row.actor_label == "cli" and row.after == {
            "scope": "orders:read",
            "reason": "JIRA-42",
        }

    def test_it_is_a_no_op_when_already_granted(self, make_client, make_scope):
        scope = make_scope("orders:read")
        client, _ = make_client("Billing", scopes=[scope])
        assert "already holds" in run("grant_scope", client.client_id, "orders:read")
        assert AdminAction.objects.filter(action="scope.grant").count() == 1

    def test_it_refuses_an_unknown_client(self, make_scope):
        make_scope("orders:read")
        assert "Unknown client_id" in refused("grant_scope", "nope", "orders:read")
        assert not ScopeGrant.objects.exists()

    def test_it_refuses_an_unknown_scope(self, make_client):
        client, _ = make_client("Billing")
        assert "Unknown scope" in refused("grant_scope", client.client_id, "nope:read")
        assert not AdminAction.objects.filter(action="scope.grant").exists()


def manage(*args: str) -> subprocess.CompletedProcess:
    """Run manage.py in a child process against the test database."""
    db = settings.DATABASES["default"]
    url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    env = os.environ | {"DATABASE_URL": url, "DEBUG": "1"}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.django_db(transaction=True)
class TestCreateClientProcess:
    def test_it_prints_json_and_exits_2_on_bad_input(self):
        Scope.objects.create(name="orders:read")
        done = manage("create_client", "--name", "Billing", "--scope", "orders:read", "--json")
        assert done.returncode == 0, done.stderr
        data = json.loads(done.stdout)
        assert list(data) == ["client_id", "client_secret"]
        assert Client.objects.get(client_id=data["client_id"]).scope_names() == ["orders:read"]

        failed = manage("create_client", "--name", "Other", "--scope", "nope:read", "--json")
        assert failed.returncode == 2
        assert failed.stdout == ""
        assert len(failed.stderr.strip().splitlines()) == 1
        assert "Unknown scope 'nope:read'" in failed.stderr
        assert not Client.objects.filter(name="Other").exists()
        assert Client.objects.count() == 1
