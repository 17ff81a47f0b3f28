"""Two-factor sign-in in Chromium: an admin enrols by typing the key into "their app", keeps
the recovery codes, logs out, and signs in again with password and code; the pages load
under the Content-Security-Policy without a violation."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

import pytest
from django.conf import settings
from django_otp.oath import TOTP
from playwright.sync_api import expect

from audit.models import AdminAction
from tests.conftest import PASSWORD, make_user

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.e2e

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
WIDTHS = (1366, 800)


def app_code(key_text: str, steps_ahead: int = 0) -> str:
    """What an authenticator app shows for the typed key. TOTP accepts one step ahead, and
    refuses a step it has already seen, so the sign-in uses the next step's code."""
    key = base64.b32decode(key_text.replace(" ", "") + "=" * (-len(key_text.replace(" ", "")) % 8))
    totp = TOTP(key)
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


def shoot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)


def password_step(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


class TestTwoFactorInTheBrowser:
    def test_it_enrols_and_signs_in_with_a_code(self, live_server, watched_page, role_groups):
        page = watched_page
        make_user("ada-admin", "admin")
        password_step(page, live_server.url, "ada-admin")
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()

        page.get_by_role("link", name="Two-factor sign-in").click()
        expect(page.get_by_role("img", name="QR code to scan")).to_be_visible()
        shoot(page, "two-factor-enrol")
        key_text = page.locator("#totp-key").inner_text()
        page.get_by_label("Code").fill(app_code(key_text))
        page.get_by_role("button", name="Turn on two-factor sign-in").click()
        expect(page.get_by_role("heading", name="Two-factor sign-in is on")).to_be_visible()
        codes = page.locator("#recovery-codes").inner_text().split()
        assert len(codes) == 10
        shoot(page, "two-factor-codes")

        page.get_by_role("button", name="Log out ada-admin").click()
        password_step(page, live_server.url, "ada-admin")
        expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
        page.goto(f"{live_server.url}/users/")
        expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
        shoot(page, "two-factor-verify")
        page.get_by_label("Code").fill(app_code(key_text, steps_ahead=1))
        page.get_by_role("button", name="Verify").click()
        expect(page.get_by_role("heading", name="Users")).to_be_visible()

        assert page.violations() == []
        assert AdminAction.objects.filter(action="user.two_factor_enrol").count() == 1
