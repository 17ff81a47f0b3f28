"""The console under its Content-Security-Policy in Chromium: the main pages load without a
single violation, and htmx (live search) and the page script (confirm before disabling)
still work."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from security.models import SecretFinding
from tests.conftest import PASSWORD, make_user

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.e2e

PAGES = [
    "/",
    "/clients/",
    "/clients/scopes/",
    "/audit/",
    "/analytics/events/",
    "/analytics/events/?tail=1",
    "/security/",
    "/security/settings/",
    "/keys/",
    "/users/",
]


@pytest.fixture
def console(role_groups, make_client, make_scope):
    """An admin, and clients to search and act on (one with an open finding)."""
    admin = make_user("ada-admin", "admin")
    scope = make_scope("orders:read")
    dormant, _secret = make_client("Dormant batch job", scopes=[scope])
    make_client("Billing service", scopes=[scope])
    SecretFinding.objects.create(kind=SecretFinding.Kind.CLIENT_DORMANT, client=dormant)
    return admin.username, dormant


def log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


class TestContentSecurityPolicyInTheBrowser:
    def test_it_loads_the_main_pages_without_a_violation(self, live_server, watched_page, console):
        username, dormant = console
        log_in(watched_page, live_server.url, username)
        for path in [*PAGES, f"/clients/{dormant.client_id}/"]:
            response = watched_page.goto(live_server.url + path)
            assert response.status == 200, path
            assert "script-src 'self'" in response.headers["content-security-policy"]
            watched_page.wait_for_load_state("load")
            assert watched_page.violations() == [], path

    def test_it_keeps_htmx_live_search_working(self, live_server, watched_page, console):
        log_in(watched_page, live_server.url, console[0])
        watched_page.goto(live_server.url + "/clients/")
        watched_page.evaluate("window.__notReloaded = true")
        results = watched_page.locator("#client-results")
        expect(results.get_by_text("Billing service")).to_be_visible()
        watched_page.get_by_label("Search clients").fill("dormant")
        expect(results.get_by_text("Billing service")).to_have_count(0)
        expect(results.get_by_text("Dormant batch job")).to_be_visible()
        assert watched_page.evaluate("window.__notReloaded") is True, "reloaded: not htmx"
        assert "q=dormant" in watched_page.url
        assert watched_page.violations() == []

    def test_it_asks_before_disabling_a_client(self, live_server, watched_page, console):
        username, dormant = console
        log_in(watched_page, live_server.url, username)
        watched_page.goto(live_server.url + "/security/")
        questions: list[str] = []

        def answer(dialog):
            questions.append(dialog.message)
            dialog.dismiss() if len(questions) == 1 else dialog.accept()

        watched_page.on("dialog", answer)
        button = watched_page.get_by_role("button", name="Disable client")
        button.click()
        assert questions == ["Disable Dormant batch job? The token service will refuse it at once."]
        dormant.refresh_from_db()
        assert dormant.is_active()
        button.click()
        expect(watched_page.get_by_text("Dormant batch job is disabled")).to_be_visible()
        dormant.refresh_from_db()
        assert not dormant.is_active()
        assert watched_page.violations() == []

    def test_it_notices_a_violation(self, live_server, watched_page, console):
        # The watch itself works: an inline script is blocked and reported.
        log_in(watched_page, live_server.url, console[0])
        watched_page.evaluate(
            "() => { const s = document.createElement('script');"
            " s.textContent = 'window.__ran = true'; document.body.append(s); }"
        )
        watched_page.wait_for_function("window.__cspViolations.length > 0")
        assert watched_page.evaluate("window.__ran") is None
        assert any("script-src" in v for v in watched_page.violations())
