"""Harmful changes are confirmed first: disabling a client (a production one by its name),
deleting a scope, granting a sensitive scope (with a reason, kept and audited)."""

from __future__ import annotations

from django.urls import reverse

from audit.models import AdminAction
from clients.models import Client, ScopeGrant

HTMX = {"HX-Request": "true"}


class TestDisableConfirmation:
    def test_the_client_page_links_to_the_question(self, operator_client, make_client):
        client, _ = make_client("Billing", environment="production")
        text = operator_client.get(reverse("clients:detail", args=[client.client_id])).text
        assert f'href="{reverse("clients:disable", args=[client.client_id])}"' in text
        assert 'name="status" value="disabled"' not in text

    def test_a_development_client_needs_only_the_button(self, operator_client, make_client):
        client, _ = make_client("Scratch")
        page = operator_client.get(reverse("clients:disable", args=[client.client_id])).text
        assert "type <strong>" not in page and 'class="destructive"' in page
        operator_client.post(reverse("clients:disable", args=[client.client_id]))
        client.refresh_from_db()
        assert client.status == Client.Status.DISABLED

    def test_a_production_client_refuses_a_wrong_name(self, operator_client, make_client):
        client, _ = make_client("Billing", environment="production")
        url = reverse("clients:disable", args=[client.client_id])
        response = operator_client.post(url, {"confirm_name": "Billin"})
        assert response.status_code == 400 and "data-error-summary" in response.text
        client.refresh_from_db()
        assert client.is_active() and not AdminAction.objects.filter(action="client.disable")


class TestSensitiveGrant:
    def test_it_asks_for_the_reason(self, operator_client, make_client, make_scope):
        client, _ = make_client("Billing")
        make_scope("payments:refund", sensitive=True)
        url = reverse("clients:scope_add", args=[client.client_id])
        response = operator_client.post(url, {"scope": "payments:refund"}, headers=HTMX)
        assert response.status_code == 422
        assert "payments:refund is sensitive: say why this client needs it." in response.text
        assert not client.grants.exists()

    def test_the_reason_is_kept_and_audited(self, operator_client, make_client, make_scope):
        client, _ = make_client("Billing")
        make_scope("payments:refund", sensitive=True)
        url = reverse("clients:scope_add", args=[client.client_id])
        data = {"scope": "payments:refund", "reason": "refunds for the EU shop"}
        assert operator_client.post(url, data).status_code == 302
        assert ScopeGrant.objects.get().reason == "refunds for the EU shop"
        row = AdminAction.objects.filter(action="scope.grant").latest("id")
        assert row.after == {"scope": "payments:refund", "reason": "refunds for the EU shop"}

    def test_an_ordinary_scope_needs_no_reason(self, operator_client, make_client, make_scope):
        client, _ = make_client("Billing")
        make_scope("orders:read")
        url = reverse("clients:scope_add", args=[client.client_id])
        assert operator_client.post(url, {"scope": "orders:read"}).status_code == 302

    def test_registering_with_a_sensitive_scope_asks_for_the_reason(
        self, operator_client, make_scope
    ):
        make_scope("payments:refund", sensitive=True)
        data = {
            "name": "Refunder",
            "environment": "staging",
            "access_token_lifetime": "3600",
            "scopes": ["payments:refund"],
        }
        response = operator_client.post(reverse("clients:register"), data)
        assert "is sensitive: say why" in response.text and not Client.objects.exists()
        data["scope_reason"] = "issues refunds"
        assert operator_client.post(reverse("clients:register"), data).status_code == 302
        assert ScopeGrant.objects.get().reason == "initial scope: issues refunds"
