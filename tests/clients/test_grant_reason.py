"""Recording or changing why a client holds a scope: the service, the client page's form,
and the "grant without a recorded reason" finding it resolves."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from audit.models import AdminAction
from audit.services import Actor
from clients.models import ScopeGrant
from clients.services import scope_grant_reason_update
from reviews.models import Finding
from reviews.scan import findings_scan

pytestmark = pytest.mark.django_db


@pytest.fixture
def grant(make_scope, make_client) -> ScopeGrant:
    """A grant made before reasons were asked for: none recorded."""
    client, _ = make_client("Billing", scopes=[make_scope("orders:read")])
    ScopeGrant.objects.filter(client=client).update(reason="")
    return ScopeGrant.objects.select_related("client", "scope").get(client=client)


@pytest.fixture
def sensitive_grant(make_scope, make_client) -> ScopeGrant:
    scope = make_scope("payments:refund", sensitive=True)
    client, _ = make_client("Refunds", scopes=[scope], scope_reason="refund desk")
    return ScopeGrant.objects.select_related("client", "scope").get(client=client)


def actor(user) -> Actor:
    return Actor(label=user.username, user=user)


def url(grant: ScopeGrant) -> str:
    return reverse("clients:scope_reason", args=[grant.client.client_id, grant.scope.name])


class TestScopeGrantReasonUpdate:
    def test_it_records_the_reason_with_a_before_after_audit_row(self, grant, admin_user):
        scope_grant_reason_update(actor=actor(admin_user), grant=grant, reason="invoice export")
        grant.refresh_from_db()
        assert grant.reason == "invoice export"
        row = AdminAction.objects.get(action="scope.grant_reason")
        assert (row.actor, row.target_id) == (admin_user, grant.client.client_id)
        assert row.before == {"scope": "orders:read", "reason": ""}
        assert row.after == {"scope": "orders:read", "reason": "invoice export"}

    def test_it_keeps_the_grant_time_and_granter(self, grant, admin_user):
        granted_at, granted_by = grant.granted_at, grant.granted_by_id
        scope_grant_reason_update(actor=actor(admin_user), grant=grant, reason="x")
        grant.refresh_from_db()
        assert (grant.granted_at, grant.granted_by_id) == (granted_at, granted_by)

    def test_the_same_reason_records_nothing(self, grant, admin_user):
        scope_grant_reason_update(actor=actor(admin_user), grant=grant, reason="")
        assert not AdminAction.objects.filter(action="scope.grant_reason").exists()

    def test_a_sensitive_grant_keeps_a_reason(self, sensitive_grant, admin_user):
        with pytest.raises(ValidationError, match="sensitive"):
            scope_grant_reason_update(actor=actor(admin_user), grant=sensitive_grant, reason=" ")
        sensitive_grant.refresh_from_db()
        assert sensitive_grant.reason == "initial scope: refund desk"

    def test_it_refuses_a_reason_the_column_cannot_hold(self, grant, admin_user):
        with pytest.raises(ValidationError):
            scope_grant_reason_update(actor=actor(admin_user), grant=grant, reason="x" * 301)
        assert not AdminAction.objects.filter(action="scope.grant_reason").exists()

    def test_it_resolves_the_no_reason_finding(self, grant, admin_user):
        findings_scan()
        assert Finding.objects.get(kind="grant_no_reason").status == "open"
        scope_grant_reason_update(actor=actor(admin_user), grant=grant, reason="invoice export")
        findings_scan()
        assert Finding.objects.get(kind="grant_no_reason").status == "resolved"


class TestReasonForm:
    def test_operators_see_the_form_viewers_do_not(self, grant, operator_client, viewer_client):
        page = reverse("clients:detail", args=[grant.client.client_id])
        assert url(grant) in operator_client.get(page).text
        assert url(grant) not in viewer_client.get(page).text

    def test_an_operator_saves_a_reason_and_comes_back_to_the_page(
        self, grant, operator_client, operator
    ):
        response = operator_client.post(url(grant), {"reason": "invoice export"}, follow=True)
        assert response.redirect_chain[0] == (
            reverse("clients:detail", args=[grant.client.client_id]),
            302,
        )
        assert "Saved the reason for orders:read." in response.text
        grant.refresh_from_db()
        assert grant.reason == "invoice export"
        assert AdminAction.objects.get(action="scope.grant_reason").actor == operator

    def test_a_refused_reason_says_why_and_changes_nothing(self, sensitive_grant, admin_client):
        response = admin_client.post(url(sensitive_grant), {"reason": ""}, follow=True)
        assert "not saved" in response.text and "is sensitive" in response.text
        sensitive_grant.refresh_from_db()
        assert sensitive_grant.reason == "initial scope: refund desk"

    def test_a_multi_line_reason_is_refused(self, grant, admin_client):
        response = admin_client.post(url(grant), {"reason": "a\nb"}, follow=True)
        assert "not saved" in response.text
        grant.refresh_from_db()
        assert grant.reason == ""

    def test_viewers_cannot_change_it(self, grant, viewer_client):
        assert viewer_client.post(url(grant), {"reason": "x"}).status_code == 403

    def test_it_refuses_get(self, grant, operator_client):
        assert operator_client.get(url(grant)).status_code == 405

    def test_an_ungranted_scope_is_404(self, grant, admin_client, make_scope):
        make_scope("other:read")
        missing = reverse("clients:scope_reason", args=[grant.client.client_id, "other:read"])
        assert admin_client.post(missing, {"reason": "x"}).status_code == 404


class TestFindingText:
    def test_it_says_how_to_fix_it(self, grant, viewer_client):
        findings_scan()
        page = viewer_client.get(reverse("reviews:findings"), {"kind": "grant_no_reason"}).text
        assert "Record a reason" in page
        assert reverse("clients:detail", args=[grant.client.client_id]) in page
