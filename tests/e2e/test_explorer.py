"""The events explorer in Chromium: filters, keyset paging, a bad filter, live tail (a new
event appears without a reload), export download, and no sideways scrolling at 800 px."""

from __future__ import annotations

import os
import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from analytics.explorer import PAGE_SIZE
from analytics.models import TokenEvent
from tests.analytics.conftest import event_fields, partitions_for
from tests.conftest import make_user
from tests.e2e.test_register_client import log_in

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.e2e

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


@pytest.fixture
def viewer_login(role_groups) -> str:
    return make_user("vic-viewer", "viewer").username


@pytest.fixture
def traffic(role_groups, make_client):
    """A page and a half of Keyward events, failures among them, and a few from Keycloak."""
    client, _ = make_client(name="Billing service")
    now = timezone.now()
    rows = []
    for n in range(PAGE_SIZE + 25):
        failed = n % 7 == 3
        rows.append(
            TokenEvent(
                **event_fields(
                    occurred_at=now - timedelta(minutes=n + 1),
                    client_id=client.client_id,
                    client_known=True,
                    outcome="failure" if failed else "success",
                    reason="bad_secret" if failed else "ok",
                    scopes_granted="" if failed else "orders:read",
                    jti="" if failed else uuid.uuid4().hex,
                    status_code=401 if failed else 200,
                    source_ip=f"10.20.{n % 3}.{n + 1}",
                )
            )
        )
    for n in range(3):
        rows.append(
            TokenEvent(
                **event_fields(
                    occurred_at=now - timedelta(minutes=n * 10 + 5, seconds=30),
                    source="keycloak",
                    client_id="legacy-reporting-job-with-a-rather-long-client-identifier",
                    outcome="failure",
                    reason="invalid_client_credentials",
                    source_ip="2001:db8:42::7",
                    scopes_granted="",
                    jti="",
                    status_code=401,
                )
            )
        )
    partitions_for(*(row.occurred_at for row in rows))
    TokenEvent.objects.bulk_create(rows)
    return client


def results_rows(page):
    return page.locator("#event-rows tr[data-cursor]")


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


class TestExplorer:
    def test_it_filters_pages_tails_and_exports(self, live_server, page, viewer_login, traffic):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        base = live_server.url
        csp_complaints = []
        page.on(
            "console",
            lambda m: (
                csp_complaints.append(m.text) if "Content Security Policy" in m.text else None
            ),
        )
        page.set_viewport_size({"width": 1366, "height": 900})
        log_in(page, base, viewer_login)
        page.get_by_role("link", name="Events", exact=True).click()
        expect(page.get_by_role("heading", name="Token events")).to_be_visible()
        expect(results_rows(page)).to_have_count(PAGE_SIZE)
        page.screenshot(path=SCREENSHOTS / "explorer-1366.png", full_page=True)

        # A filter narrows the rows through htmx and lands in the address bar.
        page.get_by_label("Source", exact=True).fill("keycloak")
        page.get_by_role("button", name="Filter").click()
        expect(results_rows(page)).to_have_count(3)
        # Only the filter in use: empty fields stay out of a URL meant to be shared.
        expect(page).to_have_url(f"{base}/analytics/events/?source=keycloak")
        expect(page.get_by_text("invalid client credentials").first).to_be_visible()

        # A network filter in IPv6.
        page.get_by_label("Source", exact=True).fill("")
        page.get_by_label("Source IP or CIDR").fill("2001:db8::/32")
        page.get_by_role("button", name="Filter").click()
        expect(results_rows(page)).to_have_count(3)

        # A bad filter says what is wrong instead of failing.
        page.get_by_label("Source IP or CIDR").fill("10.20.0.0/99")
        page.get_by_role("button", name="Filter").click()
        expect(page.get_by_role("alert")).to_contain_text("Enter an IP address")

        # Keyset paging: older, then newer again, each a shareable URL.
        page.goto(f"{base}/analytics/events/?outcome=&range=24h")
        expect(page).to_have_url(f"{base}/analytics/events/?range=24h")  # redirected
        first_page = results_rows(page).first.get_attribute("data-cursor")
        page.get_by_role("link", name="Older →").click()
        expect(page).to_have_url(re.compile(r"[?&]before=[0-9]+-[0-9a-f]{32}"))
        expect(results_rows(page)).to_have_count(28)
        page.reload()
        expect(results_rows(page)).to_have_count(28)
        page.get_by_role("link", name="← Newer").click()
        expect(results_rows(page).first).to_have_attribute("data-cursor", first_page)

        # Live tail: an event stored now appears on top without a reload.
        page.get_by_role("button", name="Live tail").click()
        expect(page.get_by_role("button", name="Stop live tail")).to_be_visible()
        page.evaluate("window.__notReloaded = true")
        TokenEvent.objects.create(
            **event_fields(
                occurred_at=timezone.now(),
                client_id="brand-new-caller",
                outcome="failure",
                reason="unknown_client",
                jti="",
                status_code=401,
            )
        )
        newest = results_rows(page).first
        expect(newest).to_contain_text("brand-new-caller", timeout=8_000)
        expect(newest).to_contain_text("Unknown client")
        assert page.evaluate("window.__notReloaded") is True
        page.get_by_role("button", name="Stop live tail").click()

        # Export: the browser downloads the filtered CSV under a dated name.
        page.goto(f"{base}/analytics/events/?source=keycloak")
        with page.expect_download() as download_info:
            page.get_by_role("button", name="Export CSV").click()
        download = download_info.value
        assert download.suggested_filename.startswith("keyward-events-")
        assert download.suggested_filename.endswith(".csv")
        lines = Path(download.path()).read_text().splitlines()
        assert lines[0].startswith("occurred_at,source,endpoint,client_id")
        assert len(lines) == 4
        with page.expect_download() as download_info:
            page.get_by_role("button", name="Export NDJSON").click()
        assert download_info.value.suggested_filename.endswith(".ndjson")

        # 800 px wide: the page does not scroll sideways.
        page.goto(f"{base}/analytics/events/")
        page.set_viewport_size({"width": 800, "height": 900})
        expect(results_rows(page)).to_have_count(PAGE_SIZE)
        assert no_sideways_scroll(page)
        page.screenshot(path=SCREENSHOTS / "explorer-800.png", full_page=True)
        page.goto(f"{base}/analytics/events/?ip=nope")
        assert no_sideways_scroll(page)
        page.screenshot(path=SCREENSHOTS / "explorer-800-error.png")
        page.goto(f"{base}/analytics/events/?source=nobody")
        page.screenshot(path=SCREENSHOTS / "explorer-800-empty.png")
        assert csp_complaints == []
