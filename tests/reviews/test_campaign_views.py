"""Review campaign pages: role checks on every view, the decision page per reviewer,
deciding one (plain POST and htmx) and in bulk, closing, and the report (HTML and CSV)."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from audit.models import AdminAction
from clients.models import ScopeGrant
from reviews.models import ReviewCampaign
from tests.conftest import logged_in

from .conftest import item, start

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(world, fallback):
    return start(fallback, policy="recommendation")


@pytest.fixture
def owner_client(owner):
    return logged_in(owner)


def url(name: str, campaign) -> str:
    return reverse(f"reviews:{name}", args=[campaign.pk])


def decide(browser, campaign, items, decision="keep", justification="still needed", **headers):
    return browser.post(
        url("campaign_decide", campaign),
        {"items": [i.pk for i in items], "decision": decision, "justification": justification},
        **headers,
    )


class TestRoles:
    def test_anonymous_users_go_to_the_login_page(self, campaign, anonymous_client):
        for target in [
            reverse("reviews:campaigns"),
            reverse("reviews:campaign_new"),
            url("campaign", campaign),
            url("campaign_report", campaign),
            url("campaign_report_csv", campaign),
        ]:
            response = anonymous_client.get(target)
            assert response.status_code == 302 and "/login/" in response["Location"], target
        for name in ("campaign_decide", "campaign_close"):
            response = anonymous_client.post(url(name, campaign))
            assert response.status_code == 302 and "/login/" in response["Location"]

    def test_viewers_read_the_list_the_page_and_the_report(self, campaign, viewer_client):
        for name in ("campaign", "campaign_report", "campaign_report_csv"):
            assert viewer_client.get(url(name, campaign)).status_code == 200, name
        assert viewer_client.get(reverse("reviews:campaigns")).status_code == 200

    def test_only_admins_start_and_close(self, campaign, operator_client, viewer_client):
        for browser in (operator_client, viewer_client):
            assert browser.get(reverse("reviews:campaign_new")).status_code == 403
            assert browser.post(reverse("reviews:campaign_new"), {}).status_code == 403
            assert browser.post(url("campaign_close", campaign)).status_code == 403
        campaign.refresh_from_db()
        assert campaign.is_open()

    def test_posts_refuse_get(self, campaign, admin_client):
        for name in ("campaign_decide", "campaign_close"):
            assert admin_client.get(url(name, campaign)).status_code == 405

    def test_reads_refuse_post(self, campaign, admin_client):
        for name in ("campaign", "campaign_report", "campaign_report_csv"):
            assert admin_client.post(url(name, campaign)).status_code == 405
        assert admin_client.post(reverse("reviews:campaigns")).status_code == 405

    def test_a_user_who_is_not_the_reviewer_is_refused(self, campaign, owner_client, fallback):
        theirs = item(campaign, "Stager", "orders:read")  # the fallback reviewer's
        mine = item(campaign, "Checkout", "orders:read")
        response = decide(owner_client, campaign, [mine, theirs])
        assert response.status_code == 403
        assert not campaign.items.exclude(decision="").exists()
        fallback_client = logged_in(fallback)
        assert decide(fallback_client, campaign, [mine]).status_code == 403


class TestList:
    def test_it_says_what_to_do_when_empty(self, admin_client, viewer_client, db):
        assert "Start one" in admin_client.get(reverse("reviews:campaigns")).content.decode()
        html = viewer_client.get(reverse("reviews:campaigns")).content.decode()
        assert "An admin starts them" in html and "Start a campaign" not in html

    def test_it_counts_what_waits_for_the_user(self, campaign, owner_client):
        html = owner_client.get(reverse("reviews:campaigns")).content.decode()
        assert "Q1 access review" in html and "3 to decide" in html


class TestOverview:
    def test_it_tells_a_reviewer_what_waits(self, campaign, owner_client, viewer_client):
        html = owner_client.get(reverse("dashboard:overview")).content.decode()
        assert "3 grants wait for your review in Q1 access review" in html
        assert url("campaign", campaign) in html
        assert (
            "wait for your review"
            not in viewer_client.get(reverse("dashboard:overview")).content.decode()
        )


class TestStart:
    def form(self, fallback, **changes) -> dict:
        return {
            "name": "Payments review",
            "selection": "team",
            "team": "payments",
            "deadline": "2026-04-30",
            "recurrence": "quarterly",
            "no_response_policy": "remove",
            "fallback_reviewer": fallback.pk,
        } | changes

    def test_the_form_lists_console_users_as_fallback(self, world, admin_client, fallback):
        html = admin_client.get(reverse("reviews:campaign_new")).content.decode()
        assert "fred-fallback" in html and 'name="form_token"' in html
        assert 'value="2026-05-13"' in html  # four weeks after the world's today, 15 April

    def test_it_starts_a_campaign_and_audits(self, world, admin_client, fallback):
        response = admin_client.post(reverse("reviews:campaign_new"), self.form(fallback))
        campaign = ReviewCampaign.objects.get()
        assert response.status_code == 302 and response["Location"] == url("campaign", campaign)
        assert campaign.selection_label() == "scopes of team payments"
        assert campaign.deadline.isoformat() == "2026-04-30T23:59:00+00:00"
        assert campaign.recurrence == "quarterly" and campaign.no_response_policy == "remove"
        row = AdminAction.objects.get(action="review.campaign_start")
        assert row.actor_label == "ada-admin" and row.after["items"] == 1

    def test_it_asks_for_the_team_of_a_team_selection(self, world, admin_client, fallback):
        response = admin_client.post(reverse("reviews:campaign_new"), self.form(fallback, team=""))
        assert (
            response.status_code == 400
            and "Choose the team to review." in response.content.decode()
        )
        assert not ReviewCampaign.objects.exists()

    def test_it_says_when_nothing_matches(self, world, admin_client, fallback):
        data = self.form(fallback, selection="environment", environment="development")
        response = admin_client.post(reverse("reviews:campaign_new"), data)
        assert response.status_code == 400 and "nothing to review" in response.content.decode()

    def test_it_refuses_a_past_deadline(self, world, admin_client, fallback):
        data = self.form(fallback, deadline="2025-12-31")
        response = admin_client.post(reverse("reviews:campaign_new"), data)
        assert response.status_code == 400 and "today or later" in response.content.decode()


class TestDecisionPage:
    def test_a_reviewer_sees_only_their_own_pending_items(self, campaign, owner_client):
        html = owner_client.get(url("campaign", campaign)).content.decode()
        assert "Your pending decisions" in html
        assert html.count('name="decision" value="keep"') == 3 + 1  # three rows + bulk form
        assert "Stager" not in html

    def test_it_shows_the_evidence_and_prefills_the_recommendation(self, campaign, owner_client):
        html = owner_client.get(url("campaign", campaign)).content.decode()
        used, unused = (
            item(campaign, "Checkout", "orders:read"),
            item(campaign, "Checkout", "orders:write"),
        )
        assert "requests: 1 in 30 days, 1 in 90" in html and "this week" in html
        row = html[html.index(f'id="item-{used.pk}"') :]
        assert 'value="keep" checked' in row[: row.index("</tr>")]
        row = html[html.index(f'id="item-{unused.pk}"') :]
        assert 'value="remove" checked' in row[: row.index("</tr>")]

    def test_an_admin_sees_every_reviewers_items(self, campaign, admin_client):
        html = admin_client.get(url("campaign", campaign)).content.decode()
        assert "every reviewer" in html and "Stager" in html and "fred-fallback" in html
        assert "Close the campaign now" in html

    def test_a_user_with_nothing_to_decide_is_told_so(self, campaign, viewer_client):
        html = viewer_client.get(url("campaign", campaign)).content.decode()
        assert "Nothing waits for your decision" in html


class TestDecide:
    def test_a_reviewer_keeps_one(self, campaign, owner_client):
        target = item(campaign, "Checkout", "orders:read")
        response = decide(owner_client, campaign, [target], "keep", "used every day")
        assert response.status_code == 302 and response["Location"] == url("campaign", campaign)
        target.refresh_from_db()
        assert (target.decision, target.decided_by_label) == ("keep", "olivia-owner")
        row = AdminAction.objects.get(action="review.campaign_decide")
        assert row.actor_label == "olivia-owner" and row.after["justification"] == "used every day"

    def test_htmx_gets_the_decided_row(self, campaign, owner_client):
        target = item(campaign, "Checkout", "orders:write")
        response = decide(
            owner_client, campaign, [target], "remove", "gone", HTTP_HX_REQUEST="true"
        )
        html = response.content.decode()
        assert response.status_code == 200 and html.lstrip().startswith(
            f'<tr id="item-{target.pk}"'
        )
        assert "Remove" in html and "by olivia-owner" in html and "/reviews/changes/" in html
        assert "<html" not in html
        target.refresh_from_db()
        change_page = owner_client.get(reverse("reviews:change", args=[target.change_id]))
        assert "a remove decision in the review campaign" in change_page.content.decode()

    def test_htmx_gets_the_row_back_with_the_error(self, campaign, owner_client):
        target = item(campaign, "Checkout", "orders:write")
        response = decide(owner_client, campaign, [target], "remove", "", HTTP_HX_REQUEST="true")
        html = response.content.decode()
        assert "justification is required" in html and 'aria-invalid="true"' in html
        assert ScopeGrant.objects.filter(scope__name="orders:write").exists()

    def test_a_reviewer_removes_several_at_once(self, campaign, owner_client, world):
        chosen = [
            item(campaign, "Checkout", "orders:write"),
            item(campaign, "Checkout", "payments:refund"),
        ]
        response = decide(owner_client, campaign, chosen, "remove", "moved to the v2 API")
        assert response.status_code == 302
        assert list(
            ScopeGrant.objects.filter(client=world["checkout"]).values_list(
                "scope__name", flat=True
            )
        ) == ["orders:read"]
        assert AdminAction.objects.filter(action="review.campaign_decide").count() == 2

    def test_a_justification_is_required(self, campaign, owner_client):
        target = item(campaign, "Checkout", "orders:write")
        response = decide(owner_client, campaign, [target], "remove", "  ")
        assert response.status_code == 302
        messages = owner_client.get(response["Location"]).content.decode()
        assert "justification is required" in messages
        target.refresh_from_db()
        assert target.decision == ""

    def test_an_admin_decides_for_any_reviewer(self, campaign, admin_client):
        target = item(campaign, "Stager", "orders:read")
        assert decide(admin_client, campaign, [target]).status_code == 302
        target.refresh_from_db()
        assert target.decided_by_label == "ada-admin"

    def test_an_item_of_another_campaign_is_refused(self, campaign, owner_client, fallback):
        other = start(fallback)
        response = decide(owner_client, campaign, [item(other, "Checkout", "orders:read")])
        assert response.status_code == 302
        assert not other.items.exclude(decision="").exists()


class TestClose:
    def test_an_admin_closes_early_and_lands_on_the_report(self, campaign, admin_client):
        response = admin_client.post(url("campaign_close", campaign))
        assert response.status_code == 302 and response["Location"] == url(
            "campaign_report", campaign
        )
        campaign.refresh_from_db()
        assert not campaign.is_open() and campaign.closed_by_label == "ada-admin"
        assert set(campaign.items.values_list("decided_by_label", flat=True)) == {"policy"}
        html = admin_client.get(url("campaign", campaign)).content.decode()
        assert "decisions are final" in html


class TestReport:
    @pytest.fixture
    def decided(self, campaign, owner_client, admin_client):
        decide(
            owner_client,
            campaign,
            [item(campaign, "Checkout", "orders:read")],
            "keep",
            "=cmd|' /C calc'!A0",
        )
        decide(
            owner_client, campaign, [item(campaign, "Checkout", "orders:write")], "remove", "unused"
        )
        admin_client.post(url("campaign_close", campaign))
        return campaign

    def test_the_page_lists_every_decision_without_navigation(self, decided, viewer_client):
        html = viewer_client.get(url("campaign_report", decided)).content.decode()
        change = item(decided, "Checkout", "orders:write").change_id
        assert '<nav aria-label="Main">' not in html and "data-print" in html
        for text in (
            "Checkout",
            "orders:write",
            "olivia-owner",
            "policy",
            "unused",
            str(change),
            "Remove",
            "Keep",
        ):
            assert text in html, text
        assert html.count("<tr>") == 1 + 4

    def test_the_csv_has_every_item_and_is_formula_safe(self, decided, viewer_client):
        response = viewer_client.get(url("campaign_report_csv", decided))
        assert response["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert len(rows) == 4
        by_scope = {(r["client"], r["scope"]): r for r in rows}
        kept = by_scope[("Checkout", "orders:read")]
        assert (
            kept["justification"] == "'=cmd|' /C calc'!A0" and kept["decided_by"] == "olivia-owner"
        )
        removed = by_scope[("Checkout", "orders:write")]
        assert removed["decision"] == "remove" and removed["change_id"]
        policy = by_scope[("Stager", "orders:read")]
        assert policy["decided_by"] == "policy" and policy["decision"] == "remove"
        assert policy["reviewer"] == "fred-fallback" and policy["decided_at"]
