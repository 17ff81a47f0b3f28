"""In Chromium: reloading the page after registering a client registers nothing and shows
no secret; the rotate dialog starts on 24 hours and keeps a refusal inside it.

Screenshots of the pages these touch go to var/screenshots/ (ignored) at 1366 and 800 px.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from audit.services import Actor
from clients import services
from clients.models import Client, ClientSecret
from tests.conftest import make_user
from tests.e2e.test_register_client import log_in

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.e2e

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
WIDTHS = (1366, 800)


def snap(page, name: str, *, own_page: bool = True) -> None:
    """Both widths, and no sideways scroll of the page's content at either, on the pages
    this work added (the header and the client page's tables under the rotate dialog are
    the layout's, checked with every page elsewhere)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
        overflow = page.evaluate(
            "Math.max(...[...document.querySelectorAll('main > *')].map("
            "(e) => e.getBoundingClientRect().right)) - window.innerWidth"
        )
        message = f"{name} scrolls sideways by {overflow} px at {width} px"
        assert overflow <= 0 or not own_page, message
    page.set_viewport_size({"width": 1366, "height": 900})


@pytest.fixture
def operator_login(role_groups) -> str:
    return make_user("olga-operator", "operator").username


class TestReloadAfterRegister:
    def test_reload_shows_no_secret_and_registers_nothing(self, live_server, page, operator_login):
        log_in(page, live_server.url, operator_login)
        page.goto(f"{live_server.url}/clients/new/")
        page.get_by_label("Name", exact=True).fill("Billing service")
        page.get_by_role("button", name="Register client").click()
        expect(page.get_by_text("will not show it again")).to_be_visible()
        secret = page.locator("#client-secret").inner_text().strip()
        client = Client.objects.get()
        assert page.url.endswith(f"/clients/{client.client_id}/secret/")  # a GET, not the POST
        expect(page.locator("#token-curl")).to_contain_text(f"curl -u {client.client_id}")
        snap(page, "secret-once")

        page.reload()
        expect(page.get_by_role("heading", name="The secret was already shown")).to_be_visible()
        assert secret not in page.content()
        expect(page.get_by_role("button", name="Rotate the secret")).to_be_visible()
        snap(page, "secret-already-shown")

        page.go_back()  # the form page again; nothing is resent
        assert Client.objects.count() == 1 and ClientSecret.objects.count() == 1

    def test_errors_are_summed_up_at_the_top_with_focus(self, live_server, page, operator_login):
        log_in(page, live_server.url, operator_login)
        page.goto(f"{live_server.url}/clients/new/")
        page.get_by_label("Name", exact=True).fill("x" * 150)
        page.get_by_label("Access-token lifetime (seconds)").fill("5")
        page.get_by_role("button", name="Register client").click()
        summary = page.locator("[data-error-summary]")
        expect(summary).to_be_focused()
        expect(summary).to_contain_text("at most 100 characters (it has 150)")
        snap(page, "register-errors")
        assert not Client.objects.exists()


class TestRotateDialog:
    def test_focus_starts_on_24_hours_and_a_refusal_stays_in_the_dialog(
        self, live_server, page, operator_login
    ):
        client, _ = services.client_register(actor=Actor.cli(), name="Billing service")
        log_in(page, live_server.url, operator_login)
        page.goto(f"{live_server.url}/clients/{client.client_id}/")
        page.get_by_role("button", name="Rotate secret").click()
        dialog = page.locator("#rotate-dialog-modal")
        expect(dialog).to_be_visible()
        expect(dialog.get_by_label("24 hours")).to_be_focused()
        expect(dialog.get_by_label("24 hours")).to_be_checked()
        snap(page, "rotate-dialog", own_page=False)

        # "Immediately" without the confirmation: refused by the server, inside the dialog.
        dialog.get_by_role("radio", name="Immediately").check()
        dialog.get_by_role("button", name="Rotate now").click()
        summary = dialog.locator("[data-error-summary]")
        expect(summary).to_contain_text("Rotating immediately cuts off every consumer")
        expect(summary).to_be_focused()
        expect(dialog).to_be_visible()
        assert page.url.endswith(f"/clients/{client.client_id}/")
        snap(page, "rotate-dialog-refused", own_page=False)
        assert client.secrets.count() == 1

        # Confirmed, it rotates and lands on the one-time secret page.
        dialog.get_by_label("I understand").check()
        dialog.get_by_role("button", name="Rotate now").click()
        expect(page.get_by_text("will not show it again")).to_be_visible()
        assert client.secrets.count() == 2


class TestConfirmationPages:
    def test_the_confirmation_pages_at_both_widths(self, live_server, page, role_groups):
        admin = make_user("ada-admin", "admin")
        make_user("vera-viewer", "viewer")
        scope = services.scope_create(actor=Actor.cli(), name="orders:read")
        client, _ = services.client_register(
            actor=Actor.cli(), name="Billing service", environment="production", scopes=[scope]
        )
        log_in(page, live_server.url, admin.username)
        base = live_server.url
        page.goto(f"{base}/clients/{client.client_id}/disable/")
        expect(page.get_by_text("This is a production client")).to_be_visible()
        snap(page, "disable-confirm")
        page.goto(f"{base}/clients/scopes/orders:read/delete/")
        snap(page, "scope-delete-confirm")
        secret = client.secrets.get()
        page.goto(f"{base}/security/clients/{client.client_id}/secrets/{secret.pk}/revoke/")
        snap(page, "revoke-confirm")
        page.goto(f"{base}/users/")
        snap(page, "users", own_page=False)
        page.once("dialog", lambda dialog: dialog.accept())
        row = page.locator("tr", has_text="vera-viewer")
        row.get_by_role("button", name="Reset password").click()
        expect(page.get_by_role("heading", name="New password for vera-viewer")).to_be_visible()
        snap(page, "user-password")
