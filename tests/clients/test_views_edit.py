from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AdminAction
from clients.models import Client, ClientSecret, ScopeGrant


@pytest.fixture
def billing(make_client, make_scope):
    client, _secret = make_client(
        "Billing", environment="staging", allowed_networks=["10.0.0.0/8"], scopes=[make_scope()]
    )
    return client


def url(name: str, client: Client) -> str:
    return reverse(f"clients:{name}", args=[client.client_id])


def form_data(client: Client, **changes) -> dict:
    data = {
        "name": client.name,
        "description": client.description,
        "owner_email": client.owner_email,
        "environment": client.environment,
        "access_token_lifetime": client.access_token_lifetime,
        "allowed_networks": "\n".join(client.allowed_networks),
        "audiences": "\n".join(client.audiences),
    }
    if client.can_introspect:
        data["can_introspect"] = "on"
    return data | changes


class TestClientEdit:
    def test_it_shows_the_form_filled_in(self, operator_client, billing):
        response = operator_client.get(url("edit", billing))
        assert response.status_code == 200
        assert 'value="Billing"' in response.text and "10.0.0.0/8" in response.text

    def test_it_saves_and_redirects_to_the_client(self, operator_client, billing):
        data = form_data(billing, name="Billing v2", allowed_networks="", audiences="aud-1")
        response = operator_client.post(url("edit", billing), data)
        assert response.status_code == 302 and response["Location"] == url("detail", billing)
        billing.refresh_from_db()
        assert billing.name == "Billing v2" and billing.allowed_networks == []
        assert billing.audiences == ["aud-1"]

    def test_it_writes_the_audit_row_with_only_the_changes(
        self, operator_client, operator, billing
    ):
        operator_client.post(url("edit", billing), form_data(billing, access_token_lifetime=120))
        row = AdminAction.objects.get(action="client.update")
        assert row.actor == operator
        assert row.before == {"access_token_lifetime": 3600}
        assert row.after == {"access_token_lifetime": 120}

    def test_it_rerenders_errors_and_saves_nothing(self, operator_client, billing):
        data = form_data(billing, name="", allowed_networks="10.0.0.0/33")
        response = operator_client.post(url("edit", billing), data)
        assert response.status_code == 200
        assert "This field is required." in response.text and "Line 1" in response.text
        billing.refresh_from_db()
        assert billing.name == "Billing" and not AdminAction.objects.filter(action="client.update")

    def test_it_refuses_other_methods(self, operator_client, billing):
        assert operator_client.put(url("edit", billing)).status_code == 405

    def test_it_refuses_viewers(self, viewer_client, billing):
        response = viewer_client.post(url("edit", billing), form_data(billing, name="Hacked"))
        assert response.status_code == 403
        billing.refresh_from_db()
        assert billing.name == "Billing"


class TestClientSetStatus:
    def test_it_sends_a_disable_to_its_confirmation_page(self, operator_client, billing):
        response = operator_client.post(url("set_status", billing), {"status": "disabled"})
        assert response.status_code == 302 and response["Location"] == url("disable", billing)
        billing.refresh_from_db()
        assert billing.status == "active"

    def test_it_disables_once_confirmed_and_enables(self, operator_client, billing):
        response = operator_client.post(url("disable", billing), {"confirm_name": "Billing"})
        assert response.status_code == 302 and response["Location"] == url("detail", billing)
        billing.refresh_from_db()
        assert billing.status == "disabled"
        operator_client.post(url("set_status", billing), {"status": "active"})
        billing.refresh_from_db()
        assert billing.status == "active"

    def test_it_writes_the_audit_rows(self, operator_client, operator, billing):
        operator_client.post(url("disable", billing), {"confirm_name": "Billing"})
        operator_client.post(url("set_status", billing), {"status": "active"})
        actions = AdminAction.objects.filter(actor=operator).values_list("action", flat=True)
        assert list(actions) == ["client.enable", "client.disable"]

    def test_it_ignores_unknown_statuses_with_a_message(self, operator_client, billing):
        response = operator_client.post(url("set_status", billing), {"status": "gone"}, follow=True)
        assert response.status_code == 200 and "Unknown status" in response.text
        billing.refresh_from_db()
        assert billing.status == "active"

    def test_it_shows_the_disabled_state_and_an_enable_button(self, operator_client, billing):
        operator_client.post(url("disable", billing), {"confirm_name": "Billing"})
        text = operator_client.get(url("detail", billing)).text
        assert "This client is disabled" in text and 'value="active"' in text

    def test_it_refuses_get(self, operator_client, billing):
        assert operator_client.get(url("set_status", billing)).status_code == 405

    def test_it_refuses_viewers(self, viewer_client, billing):
        assert (
            viewer_client.post(url("set_status", billing), {"status": "disabled"}).status_code
            == 403
        )
        billing.refresh_from_db()
        assert billing.status == "active"


class TestClientDelete:
    def test_it_asks_for_the_name(self, admin_client, billing):
        response = admin_client.get(url("delete", billing))
        assert response.status_code == 200 and "Type <strong>Billing</strong>" in response.text

    def test_it_deletes_when_the_name_matches(self, admin_client, billing):
        response = admin_client.post(url("delete", billing), {"confirm_name": "Billing"})
        assert response.status_code == 302 and response["Location"] == reverse("clients:list")
        assert not Client.objects.exists()
        assert not ClientSecret.objects.exists() and not ScopeGrant.objects.exists()

    def test_it_writes_the_audit_row(self, admin_client, admin_user, billing):
        admin_client.post(url("delete", billing), {"confirm_name": "Billing"})
        row = AdminAction.objects.get(action="client.delete")
        assert row.actor == admin_user and row.target_id == billing.client_id
        assert row.before["name"] == "Billing"

    @pytest.mark.parametrize("typed", ["billing", "Billing ", "", "Other"])
    def test_it_refuses_anything_but_the_exact_name(self, admin_client, billing, typed):
        response = admin_client.post(url("delete", billing), {"confirm_name": typed})
        assert response.status_code == 200 and response.context["form"].errors
        assert Client.objects.filter(pk=billing.pk).exists()
        assert not AdminAction.objects.filter(action="client.delete").exists()

    def test_it_refuses_other_methods(self, admin_client, billing):
        assert admin_client.put(url("delete", billing)).status_code == 405

    def test_it_refuses_operators(self, operator_client, billing):
        response = operator_client.post(url("delete", billing), {"confirm_name": "Billing"})
        assert response.status_code == 403 and Client.objects.exists()
        assert AdminAction.objects.filter(action="access.denied").exists()
