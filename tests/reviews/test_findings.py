"""The findings scan (reviews/scan.py): each finding opened, resolved when its condition
ends, archived by a person or by a rule; with a travelling clock."""

from __future__ import annotations

import pytest

from audit.models import AdminAction
from audit.services import Actor
from clients import services as client_services
from reviews import services
from reviews.models import Finding
from reviews.scan import findings_scan

from .conftest import days

pytestmark = pytest.mark.django_db

Kind, Status = Finding.Kind, Finding.Status


def finding(kind: str, **key) -> Finding | None:
    return Finding.objects.filter(kind=kind, **key).first()


class TestUnusedGrant:
    def test_it_waits_until_the_grant_is_old_enough(self, clock, make_scope, make_client):
        client, _ = make_client(scopes=[make_scope("orders:read")], owner_email="a@example.com")
        clock.shift(days(89))
        findings_scan()
        assert finding(Kind.UNUSED_GRANT) is None
        clock.shift(days(2))
        findings_scan()
        opened = finding(Kind.UNUSED_GRANT, client_id=client.client_id, scope="orders:read")
        assert opened.status == Status.OPEN
        assert opened.evidence["last_requested"] is None and opened.evidence["days"] == 90

    def test_it_resolves_when_the_scope_is_used_again(self, clock, make_scope, make_client, use):
        client, _ = make_client(scopes=[make_scope("orders:read")])
        clock.shift(days(91))
        findings_scan()
        assert finding(Kind.UNUSED_GRANT).status == Status.OPEN
        use(client, "orders:read", source="keycloak")
        findings_scan()
        resolved = finding(Kind.UNUSED_GRANT)
        assert resolved.status == Status.RESOLVED and resolved.resolved_at is not None
        assert AdminAction.objects.filter(action="review.finding_resolve").exists()

    def test_it_reopens_the_same_row_when_the_condition_returns(
        self, clock, make_scope, make_client, use
    ):
        client, _ = make_client(scopes=[make_scope("orders:read")])
        clock.shift(days(91))
        findings_scan()
        use(client, "orders:read")
        findings_scan()
        clock.shift(days(91))
        findings_scan()
        assert Finding.objects.filter(kind=Kind.UNUSED_GRANT).count() == 1
        assert finding(Kind.UNUSED_GRANT).status == Status.OPEN

    def test_it_is_idempotent(self, clock, make_scope, make_client):
        make_client(scopes=[make_scope("orders:read")])
        clock.shift(days(91))
        first = findings_scan()
        second = findings_scan()
        assert first["opened"] >= 1 and second["opened"] == 0
        assert second["kept"] == Finding.objects.filter(status=Status.OPEN).count()


class TestArchive:
    def test_it_stays_archived_while_the_condition_holds(
        self, clock, make_scope, make_client, admin_user
    ):
        make_client(scopes=[make_scope("orders:read")])
        clock.shift(days(91))
        findings_scan()
        unused = finding(Kind.UNUSED_GRANT)
        services.finding_archive(
            actor=Actor(label="admin", user=admin_user), finding=unused, reason="quarterly job"
        )
        findings_scan()
        unused.refresh_from_db()
        assert unused.status == Status.ARCHIVED and unused.archive_reason == "quarterly job"
        assert unused.archived_by == admin_user
        assert AdminAction.objects.filter(
            action="review.finding_archive", target_id=str(unused.pk)
        ).exists()

    def test_it_refuses_an_archive_without_reason(self, clock, make_client):
        make_client()
        findings_scan()
        from django.core.exceptions import ValidationError

        with pytest.raises(ValidationError):
            services.finding_archive(actor=Actor.cli(), finding=finding(Kind.NO_OWNER), reason="  ")

    def test_a_rule_archives_the_finding_when_it_comes_back(
        self, clock, make_scope, make_client, use
    ):
        client, _ = make_client(scopes=[make_scope("orders:read")])
        clock.shift(days(91))
        findings_scan()
        services.finding_archive(
            actor=Actor.cli(), finding=finding(Kind.UNUSED_GRANT), reason="DR only", as_rule=True
        )
        use(client, "orders:read")
        findings_scan()
        assert finding(Kind.UNUSED_GRANT).status == Status.RESOLVED
        clock.shift(days(91))
        findings_scan()
        back = finding(Kind.UNUSED_GRANT)
        assert back.status == Status.ARCHIVED and back.archive_rule is not None
        assert back.archive_reason == "DR only"


class TestSensitiveOutsideProduction:
    def test_it_opens_for_staging_and_resolves_in_production(self, clock, make_scope, make_client):
        refund = make_scope("payments:refund", sensitive=True)
        client, _ = make_client(scopes=[refund], environment="staging", scope_reason="refund tests")
        findings_scan()
        opened = finding(Kind.SENSITIVE_NONPROD, client_id=client.client_id)
        assert opened.status == Status.OPEN and opened.evidence["environment"] == "staging"
        client_services.client_update(actor=Actor.cli(), client=client, environment="production")
        findings_scan()
        assert finding(Kind.SENSITIVE_NONPROD).status == Status.RESOLVED


class TestInactiveClient:
    def test_it_opens_for_a_disabled_client_and_resolves_when_enabled(
        self, clock, make_scope, make_client
    ):
        client, _ = make_client(scopes=[make_scope("orders:read")])
        client_services.client_set_status(actor=Actor.cli(), client=client, status="disabled")
        findings_scan()
        opened = finding(Kind.INACTIVE_CLIENT, client_id=client.client_id)
        assert opened.evidence["state"] == "disabled"
        assert opened.evidence["scopes"] == ["orders:read"]
        client_services.client_set_status(actor=Actor.cli(), client=client, status="active")
        findings_scan()
        assert finding(Kind.INACTIVE_CLIENT).status == Status.RESOLVED

    def test_it_opens_for_a_dormant_client_and_resolves_when_it_gets_a_token(
        self, clock, make_scope, make_client, use
    ):
        client, _ = make_client(scopes=[make_scope("orders:read")])
        clock.shift(days(31))
        findings_scan()
        assert finding(Kind.INACTIVE_CLIENT).evidence["state"] == "dormant"
        use(client, "orders:read")  # the store sets the client's last_used_at
        findings_scan()
        assert finding(Kind.INACTIVE_CLIENT).status == Status.RESOLVED


class TestMissingReasonAndOwner:
    def test_it_opens_both_and_resolves_them(self, clock, make_scope, make_client):
        scope = make_scope("orders:read")
        client, _ = make_client()
        client_services.scope_grant(actor=Actor.cli(), client=client, scope=scope)
        findings_scan()
        assert finding(Kind.NO_REASON, client_id=client.client_id).status == Status.OPEN
        assert finding(Kind.NO_OWNER, client_id=client.client_id).status == Status.OPEN
        client_services.client_update(actor=Actor.cli(), client=client, owner_email="o@example.com")
        client_services.scope_revoke(actor=Actor.cli(), client=client, scope=scope)
        client_services.scope_grant(actor=Actor.cli(), client=client, scope=scope, reason="ok")
        findings_scan()
        assert finding(Kind.NO_REASON).status == Status.RESOLVED
        assert finding(Kind.NO_OWNER).status == Status.RESOLVED


class TestScopeNobodyUses:
    def test_it_opens_and_resolves_when_someone_uses_it(self, clock, make_scope, make_client, use):
        scope = make_scope("legacy:read")
        client, _ = make_client(scopes=[scope])
        clock.shift(days(91))
        findings_scan()
        opened = finding(Kind.SCOPE_UNUSED, scope="legacy:read")
        assert opened.status == Status.OPEN and opened.evidence["holders"] == 1
        use(client, "legacy:read", source="auth0")
        findings_scan()
        assert finding(Kind.SCOPE_UNUSED).status == Status.RESOLVED


class TestEvidenceForPeople:
    def test_it_joins_lists_and_shortens_times(self):
        item = Finding(
            evidence={
                "scopes": ["a:b", "c:d"],
                "last_used_at": None,
                "granted_at": "2026-01-05T09:30:00.123+00:00",
            }
        )
        assert item.evidence_items() == [
            ("scopes", "a:b, c:d"),
            ("last used at", "never"),
            ("granted at", "2026-01-05 09:30 UTC"),
        ]
