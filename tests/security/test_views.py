"""Settings, Secrets health, rotate, revoke and disable pages: roles, methods, audit rows."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AdminAction
from audit.services import Actor
from clients.models import Client, ClientSecret
from clients.secrets import secret_hash
from security import services
from security.models import SecretPolicy
from security.scan import secrets_scan

from .conftest import T0, days

HEALTH = "/security/"
SETTINGS = "/security/settings/"


def rotate_url(client: Client) -> str:
    return reverse("security:rotate", args=[client.client_id])


def revoke_url(client: Client, secret: ClientSecret) -> str:
    return reverse("security:revoke_secret", args=[client.client_id, secret.pk])


def disable_url(client: Client) -> str:
    return reverse("clients:disable", args=[client.client_id])


class TestUrls:
    def test_they_mount_under_security(self, db):
        assert reverse("security:health") == HEALTH
        assert reverse("security:settings") == SETTINGS
        assert reverse("security:rotate", args=["abc"]) == "/security/clients/abc/rotate/"
        assert (
            reverse("security:revoke_secret", args=["abc", 7])
            == "/security/clients/abc/secrets/7/revoke/"
        )


class TestRoles:
    def test_anonymous_users_are_sent_to_login(self, anonymous_client, prod_client):
        client, _ = prod_client
        secret = client.secrets.get()
        for url in (HEALTH, SETTINGS, rotate_url(client), revoke_url(client, secret)):
            response = anonymous_client.get(url)
            assert response.status_code == 302 and "/login/" in response["Location"]
        response = anonymous_client.post(disable_url(client))
        assert response.status_code == 302 and "/login/" in response["Location"]

    def test_viewers_read_but_every_post_is_403(self, viewer_client, prod_client):
        client, _ = prod_client
        secret = client.secrets.get()
        assert viewer_client.get(HEALTH).status_code == 200
        assert viewer_client.get(SETTINGS).status_code == 200
        for url, data in [
            (SETTINGS, {"environment": "production", "production-max_secret_age_days": "5"}),
            (rotate_url(client), {"grace_choice": "24h"}),
            (revoke_url(client, secret), {}),
            (disable_url(client), {}),
        ]:
            assert viewer_client.post(url, data).status_code == 403, url
        assert viewer_client.get(rotate_url(client)).status_code == 403
        assert client.secrets.count() == 1 and not secret.__class__.objects.get().is_revoked()
        assert SecretPolicy.objects.get(environment="production").max_secret_age_days == 90
        assert AdminAction.objects.filter(action="access.denied").count() == 5

    def test_operators_cannot_edit_the_policy(self, operator_client, db):
        data = {"environment": "production", "production-max_secret_age_days": "5"}
        assert operator_client.post(SETTINGS, data).status_code == 403
        page = operator_client.get(SETTINGS).content.decode()
        assert "Only admins can change" in page and "Save production policy" not in page


class TestMethods:
    def test_disable_asks_first_on_get(self, operator_client, prod_client):
        client, _ = prod_client
        response = operator_client.get(disable_url(client))
        assert response.status_code == 200
        assert f"type <strong>{client.name}</strong>" in response.text
        client.refresh_from_db()
        assert client.is_active()

    def test_health_refuses_post(self, operator_client, db):
        assert operator_client.post(HEALTH).status_code == 405

    @pytest.mark.parametrize("method", ["put", "delete"])
    def test_rotate_and_revoke_refuse_other_methods(self, method, operator_client, prod_client):
        client, _ = prod_client
        call = getattr(operator_client, method)
        assert call(rotate_url(client)).status_code == 405
        assert call(revoke_url(client, client.secrets.get())).status_code == 405


class TestSettingsPage:
    def test_admins_edit_a_policy_and_it_is_audited(self, admin_client, admin_user):
        data = {
            "environment": "staging",
            "staging-environment": "staging",
            "staging-max_secret_age_days": "30",
            "staging-auto_revoke_replaced_after_days": "",
            "staging-auto_disable_dormant_after_days": "45",
        }
        response = admin_client.post(SETTINGS, data)
        assert response.status_code == 302
        policy = SecretPolicy.objects.get(environment="staging")
        assert (policy.max_secret_age_days, policy.auto_disable_dormant_after_days) == (30, 45)
        row = AdminAction.objects.get(action="policy.update")
        assert row.actor == admin_user and row.after == {
            "max_secret_age_days": 30,
            "auto_disable_dormant_after_days": 45,
        }

    def test_it_shows_field_errors(self, admin_client):
        data = {"environment": "production", "production-max_secret_age_days": "0"}
        response = admin_client.post(SETTINGS, data)
        assert response.status_code == 400
        assert "greater than or equal to 1" in response.content.decode()
        assert not AdminAction.objects.filter(action="policy.update").exists()

    def test_it_lists_every_environment(self, viewer_client):
        page = viewer_client.get(SETTINGS).content.decode()
        assert "90 days" in page and "180 days" in page and "no limit" in page


class TestHealthPage:
    @pytest.fixture
    def findings(self, prod_client, make_client, clock):
        make_client("Stage", environment="staging")
        clock.shift(days(31))
        secrets_scan()
        return prod_client

    def test_it_lists_open_findings_with_actions_for_operators(self, findings, operator_client):
        client, _ = findings
        page = operator_client.get(HEALTH).content.decode()
        assert "Billing" in page and "Stage" in page
        assert "Secret unused for 30 days" in page and "Client with no token for 30 days" in page
        assert rotate_url(client) in page and disable_url(client) in page
        assert revoke_url(client, client.secrets.get()) in page

    def test_viewers_see_no_actions(self, findings, viewer_client):
        client, _ = findings
        page = viewer_client.get(HEALTH).content.decode()
        assert "Billing" in page and rotate_url(client) not in page
        assert "Failed notifications" not in page

    def test_it_filters_by_kind_and_environment(self, findings, viewer_client):
        page = viewer_client.get(HEALTH, {"environment": "staging"}).content.decode()
        assert "Stage" in page and "Billing" not in page
        page = viewer_client.get(HEALTH, {"kind": "client_dormant"}).content.decode()
        assert "Client with no token" in page and "<code>kwsec_" not in page

    def test_htmx_gets_only_the_results(self, findings, viewer_client):
        response = viewer_client.get(HEALTH, {"kind": "secret_unused"}, HTTP_HX_REQUEST="true")
        body = response.content.decode()
        assert body.lstrip().startswith('<section id="finding-results">')
        assert "HX-Request" in response["Vary"]

    def test_every_hx_get_has_an_href(self, findings, viewer_client):
        page = viewer_client.get(HEALTH).content.decode()
        # Live regions (data-poll, e.g. the navigation's alert count) refresh themselves.
        polled = page.count(" data-poll")
        assert page.count("hx-get=") - polled == page.count('<form method="get"')

    def test_an_empty_list_says_so(self, viewer_client):
        assert "No open findings" in viewer_client.get(HEALTH).content.decode()


class TestRotatePage:
    def test_get_shows_the_grace_choices(self, operator_client, prod_client):
        client, _ = prod_client
        page = operator_client.get(rotate_url(client)).content.decode()
        for label in ("Immediately", "1 hour", "24 hours", "7 days", "30 days", "Custom"):
            assert label in page
        assert "1 of at most 3" in page

    def test_htmx_gets_the_dialog_alone(self, operator_client, prod_client):
        client, _ = prod_client
        response = operator_client.get(rotate_url(client), HTTP_HX_REQUEST="true")
        assert response.content.decode().lstrip().startswith('<article id="rotate-dialog"')

    def test_post_rotates_and_shows_the_secret_once(
        self, operator_client, operator, prod_client, clock
    ):
        client, old_plain = prod_client
        response = operator_client.post(rotate_url(client), {"grace_choice": "7d"}, follow=True)
        secret_page = reverse("clients:secret", args=[client.client_id])
        assert response.redirect_chain == [(secret_page, 302)]
        assert response["Cache-Control"] == "no-store"
        plain = response.context["plain"]
        body = response.content.decode()
        assert plain in body and "will not show it again" in body and "data-copy-target" in body
        new = ClientSecret.objects.get(secret_hash=secret_hash(plain))
        old = ClientSecret.objects.get(secret_hash=secret_hash(old_plain))
        assert old.expires_at == T0 + days(7) and new.created_by == operator
        row = AdminAction.objects.get(action="secret.rotate")
        assert row.actor == operator and plain not in str(row.after)
        assert plain not in operator_client.get(HEALTH).content.decode()

    @pytest.mark.parametrize(
        ("data", "expected"),
        [
            ({"grace_choice": "custom", "custom_hours": "36"}, days(1.5)),
            ({"grace_choice": "custom", "custom_until": "2026-03-12T09:00"}, days(10)),
            ({"grace_choice": "0", "confirm_immediate": "on"}, days(0)),
        ],
    )
    def test_custom_and_immediate_grace(self, operator_client, prod_client, clock, data, expected):
        client, old_plain = prod_client
        assert operator_client.post(rotate_url(client), data).status_code == 302
        old = ClientSecret.objects.get(secret_hash=secret_hash(old_plain))
        assert old.expires_at == T0 + expected

    @pytest.mark.parametrize(
        "data",
        [
            {"grace_choice": "custom", "custom_hours": "2161"},
            {"grace_choice": "custom"},
            {"grace_choice": "custom", "custom_until": "2026-01-01T00:00"},
            {"grace_choice": "forever"},
        ],
    )
    def test_bad_grace_is_refused_with_the_form(self, operator_client, prod_client, clock, data):
        client, _ = prod_client
        response = operator_client.post(rotate_url(client), data)
        assert response.status_code == 400 and client.secrets.count() == 1
        assert "Rotate now" in response.content.decode()

    def test_a_fourth_valid_secret_is_refused_with_a_clear_message(
        self, operator_client, prod_client, clock
    ):
        client, _ = prod_client
        for _ in range(2):
            services.client_secret_rotate(actor=Actor.cli(), client=client, grace=days(7))
        response = operator_client.post(rotate_url(client), {"grace_choice": "24h"})
        assert response.status_code == 409
        assert "already has 3 valid secrets" in response.content.decode()
        assert client.secrets.count() == 3


class TestRevokePage:
    def test_get_warns_when_it_is_the_last_valid_secret(self, operator_client, prod_client):
        client, _ = prod_client
        page = operator_client.get(revoke_url(client, client.secrets.get())).content.decode()
        assert "the client will stop working" in page

    def test_get_does_not_warn_when_another_secret_is_valid(self, operator_client, prod_client):
        client, _ = prod_client
        old = client.secrets.get()
        services.client_secret_rotate(actor=Actor.cli(), client=client, grace=days(1))
        page = operator_client.get(revoke_url(client, old)).content.decode()
        assert "Revoke kwsec_" in page and "will stop working" not in page

    def test_post_revokes_audits_and_returns_to_next(self, operator_client, operator, prod_client):
        client, _ = prod_client
        secret = client.secrets.get()
        response = operator_client.post(revoke_url(client, secret), {"next": "/security/?kind=x"})
        assert response.status_code == 302 and response["Location"] == "/security/?kind=x"
        secret.refresh_from_db()
        assert secret.is_revoked()
        assert AdminAction.objects.get(action="secret.revoke").actor == operator

    def test_it_ignores_an_offsite_next(self, operator_client, prod_client):
        client, _ = prod_client
        response = operator_client.post(
            revoke_url(client, client.secrets.get()), {"next": "https://evil.example/"}
        )
        assert response["Location"] == HEALTH

    def test_another_clients_secret_is_404(self, operator_client, prod_client, make_client):
        client, _ = prod_client
        other, _ = make_client("Other")
        assert operator_client.post(revoke_url(client, other.secrets.get())).status_code == 404


class TestDisable:
    def test_a_production_client_needs_its_name_typed(self, operator_client, prod_client):
        client, _ = prod_client
        response = operator_client.post(disable_url(client), {"confirm_name": "billing"})
        assert response.status_code == 400 and "Type it exactly to confirm" in response.text
        client.refresh_from_db()
        assert client.is_active()

    def test_post_disables_and_audits(self, operator_client, operator, prod_client):
        client, _ = prod_client
        data = {"confirm_name": client.name, "next": HEALTH}
        response = operator_client.post(disable_url(client), data)
        assert response.status_code == 302 and response["Location"] == HEALTH
        client.refresh_from_db()
        assert not client.is_active()
        assert AdminAction.objects.get(action="client.disable").actor == operator
