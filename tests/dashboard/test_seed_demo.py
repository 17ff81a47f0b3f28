from __future__ import annotations

import os
import re
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AdminAction
from base.roles import Role, user_role
from clients.models import Client, Scope, ScopeGrant
from clients.secrets import secret_hash
from dashboard.management.commands.seed_demo import DEMO_PASSWORD


def seed(*args) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def client_block(output: str, client: Client) -> list[str]:
    """The lines the summary prints for `client`: its heading, its ids, maybe its secret."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"  {client.name} ("))
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith("    "):
            break
        block.append(line.strip())
    return block


def table_sizes() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (User, Scope, Client, ScopeGrant, AdminAction))


class TestSeedDemo:
    @pytest.fixture(autouse=True)
    def _debug(self, settings):
        settings.DEBUG = True

    def test_it_creates_a_user_of_each_role_who_can_log_in(self, db, client):
        output = seed()
        for username, role in [
            ("admin", Role.ADMIN),
            ("operator", Role.OPERATOR),
            ("viewer", Role.VIEWER),
        ]:
            user = User.objects.get(username=username)
            assert user_role(user) == role and user.check_password(DEMO_PASSWORD)
        assert (
            "Log in at http://127.0.0.1:8000/ as admin / keyward-demo (also operator, viewer)"
            in output
        )
        response = client.post("/login/", {"username": "admin", "password": DEMO_PASSWORD})
        assert response.status_code == 302

    def test_it_points_the_login_line_at_the_issuer(self, db, settings):
        # KEYWARD_DEV_PORT=8001 bin/dev sets the issuer to the port it serves on.
        settings.KEYWARD_ISSUER = "http://127.0.0.1:8001"
        assert "Log in at http://127.0.0.1:8001/ as admin" in seed()

    def test_it_tells_where_mails_go_when_they_are_written_to_files(self, db, settings, tmp_path):
        settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
        settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
        assert f"Emails are written to {tmp_path}/mail/ instead of being sent." in seed()

    def test_it_says_nothing_of_mail_sent_another_way(self, db, settings):
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        assert "Emails are written" not in seed()

    def test_it_creates_scopes_and_clients_in_several_environments(self, db):
        seed()
        assert Scope.objects.get(name="payments:refund").sensitive
        assert {"orders:read", "orders:write", "inventory:read", "reports:export"} <= set(
            Scope.objects.values_list("name", flat=True)
        )
        assert 4 <= Client.objects.count() <= 6
        assert set(Client.objects.values_list("environment", flat=True)) == {
            "development",
            "staging",
            "production",
        }
        assert all(client.grants.exists() for client in Client.objects.all())
        assert Client.objects.filter(status="disabled").exists()

    def test_it_goes_through_the_services_so_the_trail_has_rows(self, db):
        seed()
        actions = set(AdminAction.objects.values_list("action", flat=True))
        # Demo grants are recorded as made months ago (scope.grant_restore keeps the time),
        # and the scope review's first scan records the findings it opened (as "system").
        assert {"user.create", "scope.create", "client.register", "scope.grant_restore"} <= actions
        # The demo campaign's decisions are its reviewer's, the demo operator.
        labels = set(AdminAction.objects.values_list("actor_label", flat=True))
        assert labels == {"cli", "system", "operator"}

    def test_it_shows_some_grants_unused_with_their_evidence(self, db):
        from reviews.models import Finding

        seed()
        unused = Finding.objects.filter(kind="unused_grant", status="open")
        assert ("Checkout service", "inventory:read") in {(f.client_name, f.scope) for f in unused}
        evidence = unused.get(scope="inventory:read", client_name="Checkout service").evidence
        assert evidence["last_requested"] is None and evidence["requested_90d"] == 0
        used = Finding.objects.filter(kind="unused_grant", scope="orders:write")
        assert not used.exists()

    def test_it_starts_a_review_campaign_with_some_decisions(self, db):
        from reviews.models import ReviewCampaign

        seed()
        campaign = ReviewCampaign.objects.get()
        assert campaign.is_open() and campaign.items.count() == 5
        assert campaign.items.filter(decision="keep", decided_by_label="operator").count() == 2
        seed()
        assert ReviewCampaign.objects.count() == 1

    def test_it_shows_exercised_never_and_not_reported(self, db):
        from reviews.selectors import client_grants_usage

        seed()
        labels = {}
        for client in Client.objects.filter(name__in=["Checkout service", "Finance reports"]):
            for usage in client_grants_usage(client):
                shown = "exercised" if usage.last_exercised else usage.exercised_label
                labels[(client.name, usage.grant.scope.name)] = shown
        assert labels[("Checkout service", "orders:read")] == "exercised"
        assert labels[("Checkout service", "inventory:read")] == "not reported"
        assert labels[("Finance reports", "orders:read")] == "never"

    def test_it_prints_each_new_secret_once(self, db):
        output = seed()
        for client in Client.objects.all():
            secret = client_block(output, client)[-1].split()[-1]
            assert secret_hash(secret) == client.secrets.get().secret_hash

    def test_it_lists_every_demo_client_with_its_scopes_and_state(self, db):
        seed()
        output = seed()  # a second run lists the same clients, without secrets
        for client in Client.objects.all():
            head, ids = client_block(output, client)[:2]
            assert client.environment in head
            assert ("DISABLED" in head) is (not client.is_active())
            assert ids.endswith("scopes: " + ", ".join(client.scope_names()))
        warehouse = client_block(output, Client.objects.get(name="Warehouse sync"))[0]
        assert "DISABLED: the token service refuses it" in warehouse

    def test_it_is_idempotent_and_prints_no_secret_again(self, db):
        seed()
        sizes = table_sizes()
        output = seed()
        assert table_sizes() == sizes
        assert "kwsec_" not in output and "Demo client secrets" not in output
        assert "exists" in output

    def test_it_fills_in_only_what_is_missing(self, db):
        seed()
        Client.objects.get(name="Local dev app").delete()
        output = seed()
        assert Client.objects.filter(name="Local dev app").count() == 1
        # One secret, the new client's: listed once and used once in the curl example.
        assert len(set(re.findall(r"kwsec_[\w-]+", output))) == 1
        assert "client Local dev app: registered" in output


class TestSeedDemoOutsideDebug:
    def test_it_refuses_without_force(self, db, settings):
        settings.DEBUG = False
        with pytest.raises(CommandError, match="DEBUG") as excinfo:
            seed()
        assert excinfo.value.returncode == 2
        assert table_sizes() == (0, 0, 0, 0, 0)

    def test_it_runs_with_force(self, db, settings):
        settings.DEBUG = False
        seed("--force")
        assert User.objects.filter(username="admin").exists()


class TestSeedDemoAsBinDevRunsIt:
    def test_it_prints_the_list_on_the_embedded_setup(self, tmp_path):
        # bin/dev: SQLite in var/, no Redis, DEBUG on; migrate, then seed_demo.
        env = {
            **os.environ,
            "DEBUG": "1",
            "KEYWARD_VAR_DIR": str(tmp_path),
            "DATABASE_URL": "",
            "REDIS_URL": "",
        }
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, check=True, timeout=300)
        seeded = subprocess.run(
            [*manage, "seed_demo"], env=env, check=True, timeout=120, capture_output=True, text=True
        )
        assert "Warehouse sync (staging, DISABLED: the token service refuses it)" in seeded.stdout
        assert "scopes: demo:read, orders:read" in seeded.stdout
        assert "/api/protected-resource/online" in seeded.stdout
        # Development's mail goes to files beside the database, not into this output.
        assert f"Emails are written to {tmp_path}/mail/ instead of being sent." in seeded.stdout
