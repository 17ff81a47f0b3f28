"""The alert pages: inbox with filters and bulk actions, the navigation count, the
investigation page and its one-click responses, suppressions, detection settings."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.urls import reverse

from alerts.detections import Subject
from alerts.evaluation import detections_evaluate
from alerts.models import Alert, DetectionSetting, Suppression
from alerts.services import alert_raise
from audit.models import AdminAction
from clients.models import Client

from .conftest import NOW, Reason, traffic

pytestmark = pytest.mark.django_db

INBOX = reverse("alerts:inbox")


@pytest.fixture
def attacked(make_client, clock):
    """A production client under brute force from one address; the alert it raised."""
    client, _ = make_client("Billing", environment="production", owner_email="o@example.com")
    traffic(30, client_id=client.client_id, reason=Reason.BAD_SECRET, ip="203.0.113.5")
    detections_evaluate()
    return client, Alert.objects.get()


def url(name: str, alert: Alert, *args) -> str:
    return reverse(f"alerts:{name}", args=[alert.pk, *args])


class TestInbox:
    def test_it_lists_active_alerts_with_their_subject(self, attacked, viewer_client):
        client, alert = attacked
        page = viewer_client.get(INBOX).content.decode()
        assert "Brute force on one client" in page and "Billing" in page
        assert url("detail", alert) in page

    def test_it_filters_by_every_field(self, attacked, viewer_client):
        alert_raise(
            rule="credential_stuffing",
            subject=Subject(network="192.0.2.1/32"),
            evidence={},
            seen_at=NOW,
        )
        cases = {
            "severity=high": 2,
            "severity=low": 0,
            "rule=brute_force": 1,
            "environment=production": 1,
            "environment=staging": 0,
            "status=open": 2,
            "status=resolved": 0,
            "assignee=none": 2,
            "since=1h": 2,
            f"client={attacked[0].client_id}": 1,
        }
        for query, expected in cases.items():
            page = viewer_client.get(f"{INBOX}?{query}").content.decode()
            assert page.count('class="alert-row') == expected, query

    def test_htmx_gets_the_results_region_alone(self, attacked, viewer_client):
        response = viewer_client.get(INBOX, headers={"HX-Request": "true"})
        body = response.content.decode()
        assert body.lstrip().startswith('<section id="alert-results"') and "<nav" not in body
        assert "data-poll" in body and "every 15s" in body

    def test_the_empty_state_says_what_to_do_next(self, viewer_client):
        page = viewer_client.get(INBOX).content.decode()
        assert "No active alerts." in page and reverse("alerts:settings") in page

    def test_anonymous_visitors_are_sent_to_log_in(self, anonymous_client):
        assert anonymous_client.get(INBOX).status_code == 302


class TestNavigationCount:
    def test_every_page_shows_the_open_count(self, attacked, viewer_client):
        page = viewer_client.get(reverse("clients:list")).content.decode()
        assert 'id="nav-alerts"' in page and ">1</span>" in page

    def test_the_polled_badge_follows_changes(self, attacked, operator_client):
        _client, alert = attacked
        assert ">1</span>" in operator_client.get(reverse("alerts:nav_count")).content.decode()
        operator_client.post(url("acknowledge", alert))
        assert ">0</span>" in operator_client.get(reverse("alerts:nav_count")).content.decode()

    def test_it_refreshes_the_count_only_so_the_link_stays_current(self, attacked, viewer_client):
        page = viewer_client.get(INBOX).content.decode()
        link = re.search(r'<a [^>]*id="nav-alerts"[^>]*>', page).group(0)
        assert 'aria-current="page"' in link and 'hx-target="find .nav-count"' in link
        badge = viewer_client.get(reverse("alerts:nav_count")).content.decode()
        assert badge.startswith('<span class="nav-count') and "<a " not in badge

    def test_it_is_one_query_then_cached(self, attacked, viewer_client, django_assert_num_queries):
        from alerts.selectors import alerts_open_count

        alerts_open_count()
        with django_assert_num_queries(0):
            assert alerts_open_count() == 1


class TestBulk:
    def test_operators_resolve_several_with_audit_and_timeline(self, clock, operator_client):
        for n in range(3):
            alert_raise(
                rule="brute_force", subject=Subject(client_id=f"c{n}"), evidence={}, seen_at=NOW
            )
        ids = [str(pk) for pk in Alert.objects.values_list("pk", flat=True)]
        response = operator_client.post(
            reverse("alerts:bulk"),
            {"alerts": ids, "action": "resolve", "close_reason": "false_positive"},
        )
        assert response.status_code == 302
        assert set(Alert.objects.values_list("status", flat=True)) == {"resolved"}
        assert AdminAction.objects.filter(action="alert.resolve").count() == 3

    def test_resolving_needs_a_reason(self, attacked, operator_client):
        _client, alert = attacked
        operator_client.post(reverse("alerts:bulk"), {"alerts": [alert.pk], "action": "resolve"})
        alert.refresh_from_db()
        assert alert.status == "open"

    def test_viewers_and_get_are_refused(self, attacked, viewer_client, operator_client):
        _client, alert = attacked
        data = {"alerts": [alert.pk], "action": "acknowledge"}
        assert viewer_client.post(reverse("alerts:bulk"), data).status_code == 403
        assert operator_client.get(reverse("alerts:bulk")).status_code == 405
        alert.refresh_from_db()
        assert alert.status == "open"


class TestInvestigation:
    def test_it_explains_in_plain_words(self, attacked, viewer_client):
        _client, alert = attacked
        page = viewer_client.get(url("detail", alert)).content.decode()
        assert "30 requests presented a wrong secret for this client within 5 minutes" in page
        assert "threshold is 20" in page and "What to do" in page

    def test_it_shows_sample_events_and_links_the_explorer(self, attacked, viewer_client):
        client, alert = attacked
        page = viewer_client.get(url("detail", alert)).content.decode()
        assert page.count("203.0.113.5</code>") == 5
        assert "/analytics/events/?from=" in page and f"client_id={client.client_id}" in page

    def test_viewers_see_no_response_buttons(self, attacked, viewer_client):
        _client, alert = attacked
        page = viewer_client.get(url("detail", alert)).content.decode()
        assert url("respond_disable", alert) not in page


class TestResponses:
    def test_disable_client(self, attacked, operator_client, operator):
        client, alert = attacked
        assert operator_client.post(url("respond_disable", alert)).status_code == 302
        client.refresh_from_db()
        assert client.status == Client.Status.DISABLED
        audit = AdminAction.objects.get(action="client.disable")
        assert audit.actor == operator and audit.target_id == client.client_id
        entry = alert.timeline.get(kind="response")
        assert entry.actor == operator and "Disabled client Billing" in entry.text

    def test_revoke_secret(self, attacked, operator_client):
        client, alert = attacked
        secret = client.secrets.get()
        operator_client.post(url("respond_revoke", alert, secret.pk))
        secret.refresh_from_db()
        assert secret.is_revoked()
        assert AdminAction.objects.filter(action="secret.revoke").exists()
        assert alert.timeline.get(kind="response").details["secret_id"] == secret.pk

    def test_rotate_secret_shows_the_new_one_once(self, attacked, operator_client):
        client, alert = attacked
        refused = operator_client.post(url("respond_rotate", alert), {"grace_choice": "0"})
        assert refused.status_code == 302 and client.secrets.count() == 1  # not confirmed
        data = {"grace_choice": "0", "confirm_immediate": "on"}
        response = operator_client.post(url("respond_rotate", alert), data, follow=True)
        assert response.redirect_chain[0][1] == 302  # POST-redirect-GET
        assert response["Cache-Control"] == "no-store"
        assert "kwsec_" in response.content.decode()
        assert client.secrets.count() == 2
        assert AdminAction.objects.filter(action="secret.rotate").exists()
        assert alert.timeline.filter(kind="response", details__action="secret.rotate").exists()

    def test_block_network_is_enforced_by_the_token_service(self, make_client, clock, client):
        target, secret = make_client("Payroll")
        alert = alert_raise(
            rule="allowlist_violation",
            subject=Subject(client_id=target.client_id, network="198.51.100.0/24"),
            evidence={},
            seen_at=NOW,
            client=target,
        ).alert
        from tests.conftest import logged_in, make_user

        operator_client = logged_in(make_user("oscar", "operator"))
        operator_client.post(url("respond_block", alert))
        target.refresh_from_db()
        assert target.denied_networks == ["198.51.100.0/24"]
        audit = AdminAction.objects.get(action="client.update")
        assert audit.after == {"denied_networks": ["198.51.100.0/24"]}
        assert alert.timeline.get(kind="response").details["network"] == "198.51.100.0/24"
        token = reverse("tokens:token")
        form = {
            "grant_type": "client_credentials",
            "client_id": target.client_id,
            "client_secret": secret,
        }
        body, kind = urlencode(form), "application/x-www-form-urlencoded"
        blocked = client.post(token, body, content_type=kind, REMOTE_ADDR="198.51.100.9")
        assert blocked.status_code == 401 and blocked.json()["error"] == "invalid_client"
        allowed = client.post(token, body, content_type=kind, REMOTE_ADDR="192.0.2.1")
        assert allowed.status_code == 200

    def test_suppress_from_the_alert(self, attacked, operator_client):
        _client, alert = attacked
        data = {"by": "client", "duration": "24h", "reason": "owner is load testing"}
        operator_client.post(url("suppress", alert), data)
        alert.refresh_from_db()
        assert alert.status == "suppressed"
        suppression = Suppression.objects.get()
        assert suppression.client_id == alert.subject_client_id
        assert suppression.expires_at == NOW + timedelta(days=1)
        assert AdminAction.objects.filter(action="suppression.create").exists()

    def test_viewers_cannot_respond(self, attacked, viewer_client):
        client, alert = attacked
        for name in ("respond_disable", "respond_block", "respond_rotate", "suppress"):
            assert viewer_client.post(url(name, alert)).status_code == 403, name
        client.refresh_from_db()
        assert client.is_active() and client.secrets.count() == 1

    def test_responses_refuse_get(self, attacked, operator_client):
        _client, alert = attacked
        assert operator_client.get(url("respond_disable", alert)).status_code == 405


class TestSettingsPage:
    def test_everyone_reads_the_catalogue(self, viewer_client):
        page = viewer_client.get(reverse("alerts:settings")).content.decode()
        assert "Brute force on one client" in page
        assert "Dormant client waking" in page and "not evaluated yet" not in page
        assert "Only admins can change them" in page

    def test_admins_get_a_form_per_rule_and_environment(self, admin_client):
        page = admin_client.get(reverse("alerts:settings")).content.decode()
        assert page.count('<form method="post" id="set-') == 10 * 4
        assert 'form="set-brute_force-production"' in page and "Only admins" not in page

    def test_admins_change_a_threshold_and_it_is_audited(self, admin_client, admin_user):
        data = {
            "rule": "brute_force",
            "environment": "production",
            "enabled": "on",
            "threshold": "50",
            "window_seconds": "600",
            "minimum": "1",
            "severity": "high",
        }
        assert admin_client.post(reverse("alerts:settings"), data).status_code == 302
        row = DetectionSetting.objects.get()
        assert (row.threshold, row.window_seconds) == (50, 600)
        audit = AdminAction.objects.get(action="detection.update")
        assert audit.actor == admin_user
        assert audit.after == {"threshold": 50, "window_seconds": 600}

    def test_operators_are_refused(self, operator_client):
        data = {
            "rule": "brute_force",
            "environment": "",
            "threshold": "5",
            "window_seconds": "600",
            "minimum": "1",
            "severity": "high",
        }
        assert operator_client.post(reverse("alerts:settings"), data).status_code == 403
        assert not DetectionSetting.objects.exists()

    def test_a_window_over_an_hour_is_refused(self, admin_client):
        data = {
            "rule": "brute_force",
            "environment": "",
            "threshold": "5",
            "window_seconds": "86400",
            "minimum": "1",
            "severity": "high",
        }
        assert admin_client.post(reverse("alerts:settings"), data).status_code == 400


class TestSuppressionsPage:
    def test_operators_add_and_lift(self, operator_client, clock):
        data = {
            "rule": "credential_stuffing",
            "network": "192.0.2.0/24",
            "duration": "7d",
            "reason": "our scanner",
        }
        assert operator_client.post(reverse("alerts:suppressions"), data).status_code == 302
        suppression = Suppression.objects.get()
        operator_client.post(reverse("alerts:suppression_lift", args=[suppression.pk]))
        suppression.refresh_from_db()
        assert suppression.lifted_at is not None

    def test_a_bad_network_is_a_form_error(self, operator_client, clock):
        data = {"network": "not-a-network", "duration": "7d", "reason": "x"}
        response = operator_client.post(reverse("alerts:suppressions"), data)
        assert response.status_code == 400 and not Suppression.objects.exists()
