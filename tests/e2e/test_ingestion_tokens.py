"""Ingestion tokens end to end in Chromium: an admin creates one from the navigation, copies
it from the one page that shows it, a shipper posts Keycloak events with it over real HTTP,
the list shows its last use, and after the admin revokes it the endpoint refuses it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from analytics.models import TokenEvent
from tests.analytics.conftest import fresh_events, ndjson
from tests.conftest import make_user
from tests.e2e.test_register_client import log_in

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.e2e

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


@pytest.fixture
def admin_login(role_groups) -> str:
    return make_user("ines-admin", "admin").username


def send(base_url: str, token: str) -> requests.Response:
    return requests.post(
        f"{base_url}/analytics/api/ingest?format=keycloak",
        data=ndjson(fresh_events("keycloak", 3)),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"},
        timeout=10,
    )


class TestIngestionTokens:
    def test_an_admin_creates_uses_and_revokes_a_token(self, live_server, page, admin_login):
        base = live_server.url
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        log_in(page, base, admin_login)
        page.get_by_role("link", name="Ingestion").click()
        expect(page.get_by_role("heading", name="Ingestion tokens")).to_be_visible()

        page.get_by_label("Name").fill("Keycloak production")
        page.get_by_label("Source").fill("keycloak-prod")
        page.get_by_label("Expires").select_option("90")
        page.get_by_role("button", name="Create token").click()
        expect(page.get_by_text("Copy the token now.")).to_be_visible()
        token = page.locator("#ingestion-token").inner_text().strip()
        assert re.fullmatch(r"kwing_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", token)
        page.screenshot(path=str(SCREENSHOTS / "ingestion-token-once.png"), full_page=True)

        answer = send(base, token)
        assert answer.status_code == 202, answer.text
        assert answer.json()["ingested"] == 3
        assert TokenEvent.objects.filter(source="keycloak-prod").count() == 3

        page.get_by_role("button", name="Back to ingestion tokens").click()
        row = page.locator("table.ingestion-tokens tbody tr").first
        expect(row).to_contain_text("Keycloak production")
        expect(row).to_contain_text("keycloak-prod")
        expect(row).to_contain_text("active")
        expect(row).not_to_contain_text(token)
        page.screenshot(path=str(SCREENSHOTS / "ingestion-tokens.png"), full_page=True)

        page.once("dialog", lambda dialog: dialog.accept())
        row.get_by_role("button", name="Revoke").click()
        expect(page.get_by_role("status")).to_contain_text("Revoked the ingestion token")
        expect(page.locator("table.ingestion-tokens tbody tr").first).to_contain_text("revoked")
        page.screenshot(path=str(SCREENSHOTS / "ingestion-tokens-revoked.png"), full_page=True)

        refused = send(base, token)
        assert refused.status_code == 401
        assert refused.json()["error_description"] == "token revoked"
