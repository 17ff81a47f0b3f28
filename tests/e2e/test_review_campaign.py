"""A reviewer works through a review campaign in Chromium: log in, open the campaign from
the Review section, keep one grant (htmx swaps the row), remove two at once with one
justification, and read the printable report. Screenshots of the decision page and the
report go to var/screenshots/ for a person to look at."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from analytics.store import token_events_write
from audit.events import TokenEventRecord
from audit.services import Actor
from clients import services
from clients.models import ScopeGrant
from reviews import campaigns
from tests.conftest import make_user
from tests.e2e.test_register_client import log_in

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.e2e

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"


def used_now(client, scopes: str) -> None:
    token_events_write(
        [
            TokenEventRecord(
                id=uuid.uuid4().hex,
                occurred_at=timezone.now().timestamp(),
                endpoint="token",
                client_id=client.client_id,
                client_known=True,
                outcome="success",
                reason="ok",
                source_ip="192.0.2.1",
                status_code=200,
                scopes_requested=scopes,
                scopes_granted=scopes,
            )
        ]
    )


@pytest.fixture
def campaign(role_groups):
    """Checkout (owned by rita, in other letter case) has held three scopes for 120 days and
    uses one of them; a campaign over every grant, rita's to review."""
    make_user("rita-reviewer", "viewer")  # email rita-reviewer@example.com
    fallback = make_user("ada-admin", "admin")
    cli = Actor.cli()
    checkout, _ = services.client_register(
        actor=cli,
        name="Checkout",
        environment="production",
        owner_email="Rita-Reviewer@example.com",
    )
    for name in ("orders:read", "orders:write", "inventory:read"):
        services.scope_grant_restore(
            actor=cli,
            client=checkout,
            scope=services.scope_create(actor=cli, name=name),
            reason="initial scope",
            granted_at=timezone.now() - timedelta(days=120),
            granted_by_id=None,
        )
    used_now(checkout, "orders:read")
    return campaigns.campaign_start(
        actor=cli,
        name="Q2 access review",
        selection="all",
        deadline=timezone.now() + timedelta(days=14),
        no_response_policy="keep",
        fallback_reviewer=fallback,
    )


def row(page, campaign, scope: str):
    return page.locator(f"#item-{campaign.items.get(scope=scope).pk}")


class TestReviewCampaign:
    def test_a_reviewer_keeps_one_removes_two_and_reads_the_report(
        self, live_server, page, campaign
    ):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.set_viewport_size({"width": 1366, "height": 900})
        log_in(page, live_server.url, "rita-reviewer")
        page.get_by_role("link", name="Scope review").click()
        page.get_by_role("link", name="Campaigns").click()
        page.get_by_role("link", name="Q2 access review").click()
        expect(page.get_by_role("heading", name="Your pending decisions")).to_be_visible()

        # The recommendation is pre-selected: keep the used scope, remove the unused ones.
        read, write, inventory = (row(page, campaign, s) for s in campaign_scopes())
        expect(read.get_by_role("radio", name="Keep")).to_be_checked()
        expect(write.get_by_role("radio", name="Remove")).to_be_checked()
        expect(read).to_contain_text("this week")
        expect(write).to_contain_text("never used")
        page.screenshot(path=SCREENSHOTS / "review-campaign-decision.png", full_page=True)

        # One by one: htmx swaps the row in place, without a reload.
        page.evaluate("window.__notReloaded = true")
        read.get_by_label("Justification").fill("Reads every order it places.")
        read.get_by_role("button", name="Decide").click()
        expect(read).to_contain_text("Keep by rita-reviewer: Reads every order it places.")
        assert page.evaluate("window.__notReloaded") is True

        # In bulk: select the two unused grants, remove them with one justification.
        write.get_by_role("checkbox").check()
        inventory.get_by_role("checkbox").check()
        bulk = page.locator("#bulk-decide")
        bulk.get_by_role("radio", name="Remove").check()
        bulk.get_by_label("Justification (for every selected grant)").fill("Moved to API v2.")
        bulk.get_by_role("button", name="Decide selected").click()
        expect(
            page.get_by_text("Removed: Checkout inventory:read, Checkout orders:write.")
        ).to_be_visible()
        expect(page.get_by_text("Nothing waits for your decision")).to_be_visible()
        grants = ScopeGrant.objects.filter(client__name="Checkout").values_list(
            "scope__name", flat=True
        )
        assert list(grants) == ["orders:read"]

        # The report: every item with reviewer, decision, time, justification and change.
        page.get_by_role("link", name="report").first.click()
        expect(
            page.get_by_role("heading", name="Access review report: Q2 access review")
        ).to_be_visible()
        report = page.get_by_role("region", name="Decisions")
        expect(report.locator("tbody tr")).to_have_count(3)
        expect(report).to_contain_text("Moved to API v2.")
        expect(report).to_contain_text(str(campaign.items.get(scope="orders:write").change_id))
        expect(page.get_by_role("navigation", name="Main")).to_have_count(0)
        page.screenshot(path=SCREENSHOTS / "review-campaign-report.png", full_page=True)
        page.emulate_media(media="print")
        expect(page.get_by_role("button", name="Print")).to_be_hidden()
        page.screenshot(path=SCREENSHOTS / "review-campaign-report-print.png", full_page=True)


def campaign_scopes() -> tuple[str, str, str]:
    return ("orders:read", "orders:write", "inventory:read")
