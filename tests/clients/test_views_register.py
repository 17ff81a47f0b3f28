from __future__ import annotations

import re

from django.urls import reverse

from audit.models import AdminAction
from clients.models import Client, ClientSecret, ScopeGrant
from clients.secrets import SECRET_PREFIX, secret_hash

URL = reverse("clients:register")

VALID = {
    "name": "Billing",
    "description": "Sends invoices",
    "owner_email": "pay@example.com",
    "environment": "production",
    "access_token_lifetime": "900",
    "allowed_networks": "10.0.0.0/8\r\n\r\n192.168.1.7\r\n2001:db8::/32",
    "audiences": "https://api.example.com\nbilling",
    "can_introspect": "on",
}


def secret_in(response) -> str:
    match = re.search(r'<code id="client-secret">([^<]+)</code>', response.text)
    assert match, "no secret on the page"
    return match.group(1)


class TestRegisterForm:
    def test_it_shows_the_form_with_the_scopes(self, operator_client, make_scope):
        make_scope("orders:read", description="Read orders")
        response = operator_client.get(URL)
        assert response.status_code == 200
        assert "orders:read — Read orders" in response.text
        assert 'name="allowed_networks"' in response.text


class TestRegister:
    def test_it_registers_and_shows_the_secret_once(self, operator_client, operator, make_scope):
        scope = make_scope("orders:read")
        response = operator_client.post(URL, VALID | {"scopes": ["orders:read"]}, follow=True)
        assert response.redirect_chain[0][1] == 302  # POST-redirect-GET
        client = Client.objects.get(name="Billing")
        assert client.environment == "production" and client.access_token_lifetime == 900
        assert client.allowed_networks == ["10.0.0.0/8", "192.168.1.7/32", "2001:db8::/32"]
        assert client.audiences == ["https://api.example.com", "billing"]
        assert client.can_introspect and client.created_by == operator
        assert ScopeGrant.objects.filter(client=client, scope=scope).exists()
        secret = secret_in(response)
        assert secret.startswith(SECRET_PREFIX)
        assert secret_hash(secret) == ClientSecret.objects.get(client=client).secret_hash
        assert client.client_id in response.text
        assert "will not show it again" in response.text
        assert 'data-copy-target="#client-secret"' in response.text
        assert reverse("clients:detail", args=[client.client_id]) in response.text

    def test_it_marks_the_secret_response_uncacheable(self, operator_client):
        response = operator_client.post(URL, VALID, follow=True)
        assert response["Cache-Control"] == "no-store"
        assert 'hx-history="false"' in response.text

    def test_it_writes_the_audit_rows_with_the_request_actor(self, operator_client, operator):
        operator_client.post(URL, VALID, HTTP_USER_AGENT="pytest-agent")
        client = Client.objects.get(name="Billing")
        row = AdminAction.objects.get(action="client.register", target_id=client.client_id)
        assert row.actor == operator and row.actor_label == operator.username
        assert row.ip == "127.0.0.1" and row.user_agent == "pytest-agent"
        assert AdminAction.objects.filter(action="secret.create").count() == 1

    def test_it_refuses_get_with_other_methods(self, operator_client):
        assert operator_client.put(URL).status_code == 405

    def test_it_refuses_viewers(self, viewer_client):
        assert viewer_client.post(URL, VALID).status_code == 403
        assert not Client.objects.exists()

    def test_it_sends_anonymous_users_to_login(self, anonymous_client, db):
        response = anonymous_client.post(URL, VALID)
        assert response.status_code == 302 and response["Location"].startswith("/login/")
        assert not Client.objects.exists()


class TestRegisterValidation:
    def test_it_explains_a_bad_network_line_by_line(self, operator_client):
        data = VALID | {"allowed_networks": "10.0.0.0/8\nnot-a-net\n10.0.0.1/8"}
        response = operator_client.post(URL, data)
        assert response.status_code == 200
        assert "Line 2: “not-a-net” is not a network in CIDR notation" in response.text
        assert "Line 3: “10.0.0.1/8” has host bits set; did you mean 10.0.0.0/8?" in response.text
        assert not Client.objects.exists() and not AdminAction.objects.exists()

    def test_it_refuses_lifetimes_out_of_bounds(self, operator_client):
        for lifetime in ("59", "86401", "soon"):
            response = operator_client.post(URL, VALID | {"access_token_lifetime": lifetime})
            assert response.status_code == 200 and response.context["form"].errors
        assert not Client.objects.exists()

    def test_it_refuses_an_empty_post_with_errors_not_a_500(self, operator_client):
        response = operator_client.post(URL, {})
        assert response.status_code == 200
        assert "This field is required." in response.text

    def test_it_refuses_unknown_scopes_and_environments(self, operator_client):
        response = operator_client.post(URL, VALID | {"scopes": ["nope:x"], "environment": "moon"})
        assert set(response.context["form"].errors) == {"scopes", "environment"}
        assert not Client.objects.exists()

    def test_it_refuses_audiences_with_spaces(self, operator_client):
        response = operator_client.post(URL, VALID | {"audiences": "two words"})
        assert "Audiences cannot contain spaces" in response.text
