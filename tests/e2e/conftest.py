"""Fixtures for the Playwright + Chromium end-to-end tests (marked `e2e`)."""

from __future__ import annotations

import os

import pytest

# Playwright's sync API runs an event loop in this thread; Django's ORM refuses to run
# inside one unless told it is safe, which it is here (one test thread, no awaits).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()
        # While Playwright's loop runs, Django keeps this thread's connections in that
        # context's storage; close them now, or the test database's teardown cannot see
        # them and fails to drop it ("being accessed by other users").
        from django.db import connections

        connections.close_all()


@pytest.fixture
def page(chromium):
    context = chromium.new_context()
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


# Runs in each page before its own scripts, through the DevTools protocol (which the
# policy does not govern), and keeps every violation the page reports.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


@pytest.fixture
def watched_page(page):
    """The page, with the browser's CSP complaints (console and events) collected."""
    complaints: list[str] = []
    page.on(
        "console",
        lambda message: (
            complaints.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.add_init_script(RECORD_VIOLATIONS)

    def violations() -> list[str]:
        return complaints + page.evaluate("window.__cspViolations")

    page.violations = violations
    return page


@pytest.fixture
def role_groups(transactional_db):
    """transactional_db empties every table between tests, including the role groups
    the data migration created, so put them back."""
    from django.contrib.auth.models import Group

    for name in ("viewer", "operator", "admin"):
        Group.objects.get_or_create(name=name)
