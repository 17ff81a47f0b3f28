from __future__ import annotations

import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from analytics.models import TokenEvent
from analytics.store import token_events_write
from audit.events import TokenEventRecord
from audit.models import AdminAction
from audit.services import Actor
from clients import services
from clients.models import ScopeGrant
from security import services as security_services

HTMX = {"HX-Request": "true"}


@pytest.fixture
def billing(make_client, make_scope):
    client, _secret = make_client("Billing", scopes=[make_scope("orders:read")])
    return client


def token_event(client, *, reason: str, ip: str) -> TokenEvent:
    record = TokenEventRecord(
        id=uuid.uuid4().hex,
        occurred_at=timezone.now().timestamp(),
        endpoint="token",
        client_id=client.client_id,
        client_known=True,
        outcome="failure",
        reason=reason,
        source_ip=ip,
        status_code=401,
    )
    token_events_write([record])
    return TokenEvent.objects.get(id=record.id)


def detail_url(client) -> str:
    return reverse("clients:detail", args=[client.client_id])


def add_url(client) -> str:
    return reverse("clients:scope_add", args=[client.client_id])


def remove_url(client, scope_name: str) -> str:
    return reverse("clients:scope_remove", args=[client.client_id, scope_name])


class TestClientDetail:
    def test_it_shows_metadata_secret_hints_scopes_and_audit(self, viewer_client, billing):
        secret = billing.secrets.get()
        response = viewer_client.get(detail_url(billing))
        assert response.status_code == 200
        assert billing.client_id in response.text and secret.hint in response.text
        assert "orders:read" in response.text
        assert "client.register" in response.text and "scope.grant" in response.text

    def test_it_lists_recent_token_requests_with_their_real_reasons(
        self, viewer_client, billing, make_client
    ):
        other, _ = make_client("Other")
        ip_refused = token_event(billing, reason="ip_not_allowed", ip="203.0.113.9")
        token_event(other, reason="bad_secret", ip="198.51.100.7")
        response = viewer_client.get(detail_url(billing))
        assert "Recent token requests" in response.text
        assert "ip_not_allowed" in response.text and ip_refused.source_ip in response.text
        assert "198.51.100.7" not in response.text  # another client's request

    def test_it_says_how_to_make_a_first_token_request(self, viewer_client, billing):
        response = viewer_client.get(detail_url(billing))
        assert "No token requests yet" in response.text
        assert f"curl -u {billing.client_id} -d grant_type=client_credentials" in response.text

    def test_it_marks_revoked_secrets(self, viewer_client, billing):
        security_services.client_secret_revoke(actor=Actor.cli(), secret=billing.secrets.get())
        assert "badge-revoked" in viewer_client.get(detail_url(billing)).text

    def test_it_says_so_when_every_scope_is_granted(self, operator_client, billing):
        text = operator_client.get(detail_url(billing)).text
        assert "Every scope in the catalogue is granted" in text

    def test_it_shows_only_the_last_20_audit_entries_for_this_client(
        self, viewer_client, billing, make_client
    ):
        other, _ = make_client("Other")
        for lifetime in range(100, 125):
            services.client_update(
                actor=Actor.cli(), client=billing, access_token_lifetime=lifetime
            )
        rows = viewer_client.get(detail_url(billing)).context["audit_rows"]
        assert len(rows) == 20 and {row.target_id for row in rows} == {billing.client_id}
        assert rows[0].after == {"access_token_lifetime": 124}

    def test_it_links_to_the_audit_trail_filtered_to_this_client(self, viewer_client, billing):
        text = viewer_client.get(detail_url(billing)).text
        link = f"{reverse('audit:list')}?target_type=client&amp;target_id={billing.client_id}"
        assert link in text

    def test_it_hides_operator_buttons_from_viewers(self, viewer_client, billing):
        text = viewer_client.get(detail_url(billing)).text
        for name in ("edit", "set_status", "delete", "scope_add"):
            assert reverse(f"clients:{name}", args=[billing.client_id]) not in text, name
        assert remove_url(billing, "orders:read") not in text

    def test_it_shows_operators_their_buttons_but_not_delete(
        self, operator_client, billing, make_scope
    ):
        make_scope("orders:write")
        text = operator_client.get(detail_url(billing)).text
        for name in ("edit", "disable", "scope_add"):
            assert reverse(f"clients:{name}", args=[billing.client_id]) in text, name
        assert remove_url(billing, "orders:read") in text
        assert reverse("clients:delete", args=[billing.client_id]) not in text

    def test_it_shows_admins_the_delete_button(self, admin_client, billing):
        text = admin_client.get(detail_url(billing)).text
        assert reverse("clients:delete", args=[billing.client_id]) in text

    def test_it_answers_404_for_unknown_clients(self, viewer_client):
        assert viewer_client.get("/clients/no-such-client-id-here/").status_code == 404


class TestScopeAdd:
    def test_it_grants_the_scope_and_answers_htmx_with_the_partials(
        self, operator_client, operator, billing, make_scope
    ):
        make_scope("orders:write")
        response = operator_client.post(
            add_url(billing), {"scope": "orders:write", "reason": "ticket 42"}, headers=HTMX
        )
        assert response.status_code == 200
        assert response.text.lstrip().startswith('<section id="client-scopes">')
        assert 'id="client-audit" hx-swap-oob="true"' in response.text
        grant = ScopeGrant.objects.get(client=billing, scope__name="orders:write")
        assert grant.granted_by == operator and grant.reason == "ticket 42"

    def test_it_writes_the_audit_row(self, operator_client, operator, billing, make_scope):
        make_scope("orders:write")
        operator_client.post(add_url(billing), {"scope": "orders:write"}, headers=HTMX)
        row = AdminAction.objects.get(action="scope.grant", after__scope="orders:write")
        assert row.actor == operator and row.target_id == billing.client_id

    def test_it_redirects_back_without_htmx(self, operator_client, billing, make_scope):
        make_scope("orders:write")
        response = operator_client.post(add_url(billing), {"scope": "orders:write"})
        assert response.status_code == 302 and response["Location"] == detail_url(billing)
        assert ScopeGrant.objects.filter(client=billing, scope__name="orders:write").exists()

    def test_it_offers_only_scopes_not_yet_granted(self, operator_client, billing, make_scope):
        make_scope("orders:write")
        form = operator_client.get(detail_url(billing)).context["grant_form"]
        assert [scope.name for scope in form.fields["scope"].queryset] == ["orders:write"]

    def test_it_refuses_a_scope_already_held_with_a_form_error(self, operator_client, billing):
        for headers in (HTMX, {}):
            response = operator_client.post(
                add_url(billing), {"scope": "orders:read"}, headers=headers
            )
            assert response.status_code == (422 if headers else 400)
            assert "Choose a scope this client does not hold yet." in response.text
        assert AdminAction.objects.filter(action="scope.grant").count() == 1

    def test_it_refuses_get(self, operator_client, billing):
        assert operator_client.get(add_url(billing)).status_code == 405

    def test_it_refuses_viewers(self, viewer_client, billing, make_scope):
        make_scope("orders:write")
        response = viewer_client.post(add_url(billing), {"scope": "orders:write"}, headers=HTMX)
        assert response.status_code == 403
        assert not ScopeGrant.objects.filter(scope__name="orders:write").exists()

    def test_it_asks_anonymous_htmx_requests_to_log_in(self, anonymous_client, billing):
        response = anonymous_client.post(add_url(billing), {"scope": "x"}, headers=HTMX)
        assert response.status_code == 204 and response["HX-Redirect"].startswith("/login/")


class TestScopeRemove:
    def test_it_revokes_the_grant_and_answers_htmx_with_the_partial(self, operator_client, billing):
        response = operator_client.post(remove_url(billing, "orders:read"), headers=HTMX)
        assert response.status_code == 200 and "No scopes granted" in response.text
        assert not ScopeGrant.objects.filter(client=billing).exists()

    def test_it_writes_the_audit_row(self, operator_client, operator, billing):
        operator_client.post(remove_url(billing, "orders:read"), headers=HTMX)
        row = AdminAction.objects.get(action="scope.revoke")
        assert row.actor == operator and row.before == {"scope": "orders:read"}

    def test_it_redirects_back_without_htmx(self, operator_client, billing):
        response = operator_client.post(remove_url(billing, "orders:read"))
        assert response.status_code == 302 and response["Location"] == detail_url(billing)

    def test_it_answers_404_for_a_scope_not_held(self, operator_client, billing, make_scope):
        make_scope("orders:write")
        assert operator_client.post(remove_url(billing, "orders:write")).status_code == 404

    def test_it_refuses_get(self, operator_client, billing):
        assert operator_client.get(remove_url(billing, "orders:read")).status_code == 405

    def test_it_refuses_viewers(self, viewer_client, billing):
        assert viewer_client.post(remove_url(billing, "orders:read")).status_code == 403
        assert ScopeGrant.objects.filter(client=billing).exists()


class TestSecretRows:
    def test_it_shows_expiry_and_last_use(self, viewer_client, billing):
        secret = billing.secrets.get()
        secret.last_used_at = timezone.now()
        secret.save()
        text = viewer_client.get(detail_url(billing)).text
        assert f"{secret.last_used_at:%Y-%m-%d %H:%M}" in text
