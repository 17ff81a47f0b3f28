"""From an attack on the real token endpoint to the alert, its investigation page and the
client disabled, in Chromium: wrong secrets through the token service, the drain, one
evaluation, the inbox (nav count included), the page explaining it, one click to disable,
and the token service refusing the client's real secret.

It also leaves screenshots of the inbox and the investigation page at 1366 and 800 px in
var/screenshots/ for people to look at.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from alerts.detections import Subject
from alerts.evaluation import after_batch_drained
from alerts.models import Alert
from alerts.services import alert_raise
from analytics.drain import token_events_drain
from audit.services import Actor
from clients import services
from clients.models import Client
from tests.conftest import make_user
from tests.e2e.test_register_client import log_in
from tests.e2e.test_rotate_secret import REFUSAL_DEADLINE, refused_within, token_request

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.e2e

SHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"


@pytest.fixture
def victim(role_groups):
    scope = services.scope_create(actor=Actor.cli(), name="orders:read")
    return services.client_register(
        actor=Actor.cli(),
        name="Billing service",
        environment="production",
        scopes=[scope],
        owner_email="billing@example.com",
    )


def raise_alert(client_id: str) -> None:
    alert_raise(
        rule="scope_probing",
        subject=Subject(client_id=client_id),
        evidence={},
        seen_at=timezone.now(),
    )


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1366, 800):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1366, "height": 900})


class TestAttackToResponse:
    def test_a_brute_force_is_alerted_explained_and_stopped_in_one_click(
        self, live_server, page, victim
    ):
        client, secret = victim
        base = live_server.url
        assert token_request(base, client.client_id, secret).status_code == 200
        for n in range(25):
            response = token_request(base, client.client_id, f"kwsec_guess{n:040d}")
            assert response.status_code == 401
        token_events_drain()
        after_batch_drained()
        alert = Alert.objects.get(rule="brute_force")

        log_in(page, base, make_user("olga-operator", "operator").username)
        expect(page.locator("#nav-alerts .nav-count")).to_have_text("1")
        page.get_by_role("link", name=re.compile("^Alerts")).click()
        row = page.locator(f"#alert-{alert.pk}")
        expect(row).to_contain_text("Brute force on one client")
        expect(row).to_contain_text("Billing service")
        shoot(page, "alerts-inbox")

        # The list is live: a new alert shows up when the region polls (here: the tab
        # becoming visible again, which polls at once) ...
        raise_alert("live-1")
        page.evaluate("document.dispatchEvent(new CustomEvent('kw:visible'))")
        expect(page.locator("#alert-results")).to_contain_text("live-1")
        # The navigation's badge polled too, and its link still marks the open section.
        expect(page.locator("#nav-alerts .nav-count")).to_have_text("2")
        expect(page.locator("#nav-alerts")).to_have_attribute("aria-current", "page")
        # ... and a hidden tab does not poll.
        page.evaluate("Object.defineProperty(document, 'hidden', {value: true})")
        raise_alert("live-2")
        page.evaluate("document.dispatchEvent(new CustomEvent('kw:visible'))")
        page.wait_for_timeout(1000)
        expect(page.locator("#alert-results")).not_to_contain_text("live-2")
        page.reload()

        row.get_by_role("link", name="Brute force on one client").click()
        expect(page.get_by_text("25 requests presented a wrong secret")).to_be_visible()
        expect(page.locator("table.events-table tbody tr")).to_have_count(5)
        shoot(page, "alerts-investigation")

        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Disable client").click()
        expect(page.get_by_text("Client disabled")).to_be_visible()
        expect(page.locator("ol.timeline")).to_contain_text("Disabled client Billing service")
        assert Client.objects.get(pk=client.pk).status == Client.Status.DISABLED

        refusal = refused_within(base, client.client_id, secret, REFUSAL_DEADLINE)
        assert refusal.status_code == 401 and refusal.json()["error"] == "invalid_client"

        page.goto(f"{base}/alerts/settings/")
        shoot(page, "alerts-settings")


class TestAdminPages:
    def test_an_admin_adds_a_webhook_and_sees_its_secret_once(self, live_server, page, role_groups):
        base = live_server.url
        log_in(page, base, make_user("ada-admin", "admin").username)
        page.goto(f"{base}/alerts/destinations/")
        shoot(page, "alerts-destinations")
        page.get_by_label("Name").fill("On-call Slack")
        page.get_by_label("Kind").select_option("webhook")
        page.get_by_label("Target").fill("https://hooks.example.com/services/T0/B0/x")
        page.get_by_role("button", name="Add destination").click()
        secret = page.locator("#webhook-secret").inner_text().strip()
        assert secret.startswith("whsec_")
        shoot(page, "alerts-destination-secret")
        page.get_by_role("link", name="Done").click()
        expect(page.get_by_role("heading", name=re.compile("On-call Slack"))).to_be_visible()
        assert secret not in page.content()
        page.goto(f"{base}/alerts/suppressions/")
        shoot(page, "alerts-suppressions")
