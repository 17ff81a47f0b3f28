from __future__ import annotations

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from alerts.detections import Subject
from alerts.services import alert_raise
from audit.services import Actor
from clients import services
from clients.models import ClientSecret

URL = reverse("dashboard:overview")


class TestOverview:
    def test_it_counts_clients_scopes_grants_and_secrets(
        self, viewer_client, make_client, make_scope
    ):
        scope = make_scope("orders:read")
        make_client("A", scopes=[scope])
        disabled, _ = make_client("B")
        services.client_set_status(actor=Actor.cli(), client=disabled, status="disabled")
        counts = viewer_client.get(URL).context["counts"]
        assert counts == {
            "clients": 2,
            "active_clients": 1,
            "disabled_clients": 1,
            "scopes": 1,
            "grants": 1,
            "valid_secrets": 2,
        }

    def test_it_leaves_expired_and_revoked_secrets_out_of_the_valid_count(
        self, viewer_client, make_client
    ):
        client, _ = make_client("A")
        make_client("B")
        expired = client.secrets.get()
        expired.expires_at = timezone.now() - timedelta(seconds=1)
        expired.save(update_fields=["expires_at"])
        make_client("C")
        ClientSecret.objects.filter(client__name="C").update(revoked_at=timezone.now())
        assert viewer_client.get(URL).context["counts"]["valid_secrets"] == 1
        assert "valid secrets" in viewer_client.get(URL).content.decode()

    def test_it_counts_clients_per_environment(self, viewer_client, make_client):
        make_client(environment="production")
        make_client(environment="production")
        make_client(environment="staging")
        environments = viewer_client.get(URL).context["environments"]
        assert {env["value"]: env["count"] for env in environments} == {
            "development": 0,
            "staging": 1,
            "production": 2,
        }

    def test_it_shows_the_ten_latest_audit_entries(self, viewer_client, make_scope):
        for number in range(12):
            make_scope(f"thing{number}:read")
        response = viewer_client.get(URL)
        recent = list(response.context["recent"])
        assert len(recent) == 10 and recent[0].target_id == "thing11:read"
        html = response.content.decode()
        assert "thing11:read" in html and "thing1:read" not in html
        assert reverse("audit:list") + "?target_type=scope&amp;target_id=thing11%3Aread" in html


class TestOverviewEmptyState:
    def test_it_invites_an_operator_to_register_a_client(self, operator_client):
        html = operator_client.get(URL).content.decode()
        assert "No clients yet" in html and reverse("clients:register") in html
        assert "No changes on record yet" in html

    def test_it_tells_a_viewer_who_can_register(self, viewer_client):
        html = viewer_client.get(URL).content.decode()
        assert reverse("clients:register") not in html
        assert "An operator or admin can register one" in html

    def test_it_points_an_admin_to_the_scope_catalogue(self, admin_client):
        html = admin_client.get(URL).content.decode()
        assert "No scopes yet" in html and reverse("clients:scope_list") in html


class TestOverviewAlerts:
    def test_it_lists_open_alerts_with_a_link_to_each(self, viewer_client):
        now = timezone.now()
        raised = alert_raise(
            rule="brute_force",
            subject=Subject(client_id="svc-payments"),
            evidence={"failures": 40},
            seen_at=now,
            now=now,
        )
        body = viewer_client.get(URL).content.decode()
        section = body[body.index('id="open-alerts"') :]
        assert reverse("alerts:detail", args=[raised.alert.pk]) in section
        assert "svc-payments" in section
        assert "All 1 open alert in the inbox" in section

    def test_it_says_how_to_see_an_alert_when_there_is_none(self, viewer_client):
        body = viewer_client.get(URL).content.decode()
        assert "No open alerts" in body
