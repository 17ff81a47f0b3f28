"""manage.py scope_review: output and exit statuses."""

from __future__ import annotations

import json
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from clients.models import ScopeGrant
from reviews.models import GrantChange

from .conftest import days

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command("scope_review", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def idle_client(clock, make_scope, make_client):
    client, _ = make_client("Idle", scopes=[make_scope("orders:read")])
    clock.shift(days(91))
    return client


class TestFindings:
    def test_it_lists_open_findings_as_json(self, idle_client):
        rows = json.loads(run("findings", "--json"))
        kinds = {(r["kind"], r["scope"]) for r in rows if r["client_id"] == idle_client.client_id}
        assert ("unused_grant", "orders:read") in kinds

    def test_it_lists_them_as_text(self, idle_client):
        assert "unused_grant\tIdle orders:read" in run("findings")


class TestApply:
    def test_a_dry_run_changes_nothing(self, idle_client):
        out = run("apply", idle_client.client_id, "--dry-run")
        assert "- orders:read" in out and "dry run" in out
        assert ScopeGrant.objects.filter(client=idle_client).count() == 1

    def test_it_applies_and_rolls_back(self, idle_client):
        out = run("apply", idle_client.client_id)
        change = GrantChange.objects.get()
        assert str(change.pk) in out
        assert not ScopeGrant.objects.filter(client=idle_client).exists()
        run("rollback", str(change.pk))
        assert ScopeGrant.objects.filter(client=idle_client).count() == 1


class TestBadInput:
    @pytest.mark.parametrize(
        "args",
        [
            ("apply", "nosuchclient"),
            ("rollback", "not-a-uuid"),
            ("rollback", str(uuid.uuid4())),
        ],
    )
    def test_it_exits_with_status_2(self, db, args):
        with pytest.raises(CommandError) as raised:
            run(*args)
        assert raised.value.returncode == 2

    def test_a_refused_rollback_exits_with_status_2(self, idle_client):
        run("apply", idle_client.client_id)
        change = GrantChange.objects.get()
        run("rollback", str(change.pk))
        with pytest.raises(CommandError, match="already rolled back") as raised:
            run("rollback", str(change.pk))
        assert raised.value.returncode == 2
