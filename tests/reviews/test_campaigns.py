"""Review campaigns as services and the periodic run: starting over each selection,
reviewer assignment, decisions one by one and in bulk, reminders sent once, the
no-response policy at the deadline, rollback of removals, recurrence."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from audit.models import AdminAction
from audit.services import Actor
from clients import services as client_services
from clients.models import ScopeGrant
from reviews import campaigns, services
from reviews.models import GrantChange, ReviewCampaign

from .conftest import days, item, start

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def pairs(campaign) -> list[tuple[str, str]]:
    return list(campaign.items.values_list("client_name", "scope"))


def scopes_of(client) -> list[str]:
    return sorted(ScopeGrant.objects.filter(client=client).values_list("scope__name", flat=True))


class TestStart:
    def test_it_covers_every_grant(self, world, fallback):
        assert pairs(start(fallback)) == [
            ("Checkout", "orders:read"),
            ("Checkout", "orders:write"),
            ("Checkout", "payments:refund"),
            ("Stager", "orders:read"),
        ]

    def test_it_selects_one_environment(self, world, fallback):
        campaign = start(fallback, selection="environment", value="staging")
        assert pairs(campaign) == [("Stager", "orders:read")]

    def test_it_selects_the_scopes_of_one_team(self, world, fallback):
        campaign = start(fallback, selection="team", value="payments")
        assert pairs(campaign) == [("Checkout", "payments:refund")]

    def test_it_selects_sensitive_scopes(self, world, fallback):
        assert pairs(start(fallback, selection="sensitive")) == [("Checkout", "payments:refund")]

    def test_it_refuses_a_selection_without_grants(self, world, fallback):
        with pytest.raises(ValidationError, match="nothing to review"):
            start(fallback, selection="environment", value="development")

    def test_it_refuses_a_past_deadline_and_a_missing_fallback(self, world, fallback):
        from django.utils import timezone

        with pytest.raises(ValidationError) as error:
            start(None, deadline=timezone.now() - days(1))
        assert set(error.value.message_dict) == {"deadline", "fallback_reviewer"}

    def test_it_assigns_the_owner_by_email_in_any_case_else_the_fallback(
        self, world, fallback, owner
    ):
        campaign = start(fallback)
        assert item(campaign, "Checkout", "orders:write").reviewer == owner
        assert item(campaign, "Stager", "orders:read").reviewer == fallback

    def test_an_owner_without_a_role_is_no_reviewer(self, world, fallback, owner):
        owner.groups.clear()
        assert item(start(fallback), "Checkout", "orders:write").reviewer == fallback

    def test_it_snapshots_the_grant_evidence_and_recommendation(self, world, fallback):
        campaign = start(fallback)
        used = item(campaign, "Checkout", "orders:read")
        unused = item(campaign, "Checkout", "orders:write")
        assert (used.recommendation, unused.recommendation) == ("keep", "remove")
        assert used.evidence["requested_30d"] == 1 and used.evidence["recency"] == "this week"
        assert unused.evidence["last_requested"] is None
        assert unused.grant_reason == "TICKET-1" and unused.environment == "production"

    def test_it_audits_and_mails_each_reviewer_once(
        self, world, fallback, owner, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            campaign = start(fallback)
        row = AdminAction.objects.get(action="review.campaign_start")
        assert row.target_id == str(campaign.pk) and row.after["items"] == 4
        assert sorted(m.to[0] for m in mail.outbox) == [owner.email, fallback.email]
        to_owner = next(m for m in mail.outbox if m.to == [owner.email])
        assert "3 grants to review in Q1 access review" in to_owner.subject
        assert f"/reviews/campaigns/{campaign.pk}/" in to_owner.body
        assert to_owner.alternatives[0][1] == "text/html"


class TestDecide:
    def test_a_keep_decision_is_recorded_with_its_justification(self, world, fallback, owner):
        campaign = start(fallback)
        target = item(campaign, "Checkout", "orders:read")
        actor = Actor(label=owner.username, user=owner)
        campaigns.campaign_decide(
            actor=actor, campaign=campaign, items=[target], decision="keep", justification="used"
        )
        target.refresh_from_db()
        assert (target.decision, target.decided_by_label, target.justification) == (
            "keep",
            "olivia-owner",
            "used",
        )
        assert target.change is None and scopes_of(world["checkout"])[0] == "orders:read"

    def test_bulk_removal_is_one_change_per_client_that_rolls_back(self, world, fallback):
        campaign = start(fallback)
        chosen = [
            item(campaign, "Checkout", "orders:write"),
            item(campaign, "Checkout", "payments:refund"),
            item(campaign, "Stager", "orders:read"),
        ]
        decided = campaigns.campaign_decide(
            actor=Actor.cli(),
            campaign=campaign,
            items=chosen,
            decision="remove",
            justification="not needed since the v2 API",
        )
        assert len(decided) == 3
        assert scopes_of(world["checkout"]) == ["orders:read"] and scopes_of(world["stager"]) == []
        changes = GrantChange.objects.filter(campaign=campaign)
        assert sorted(c.client_name for c in changes) == ["Checkout", "Stager"]
        checkout_change = changes.get(client_name="Checkout")
        assert sorted(checkout_change.scope_names()) == ["orders:write", "payments:refund"]
        assert {
            i.change_id for i in campaign.items.filter(client_name="Checkout", decision="remove")
        } == {checkout_change.pk}
        services.change_rollback(actor=Actor.cli(), change=checkout_change)
        restored = ScopeGrant.objects.get(client=world["checkout"], scope__name="payments:refund")
        assert restored.reason == "refunds on request"

    def test_a_justification_is_required(self, world, fallback):
        campaign = start(fallback)
        with pytest.raises(ValidationError, match="justification is required"):
            campaigns.campaign_decide(
                actor=Actor.cli(),
                campaign=campaign,
                items=list(campaign.items.all()),
                decision="remove",
                justification="   ",
            )
        assert not campaign.items.exclude(decision="").exists()

    def test_a_decided_item_is_not_decided_again(self, world, fallback):
        campaign = start(fallback)
        target = item(campaign, "Stager", "orders:read")
        decide = dict(actor=Actor.cli(), campaign=campaign, items=[target], justification="x")
        campaigns.campaign_decide(decision="keep", **decide)
        assert campaigns.campaign_decide(decision="remove", **decide) == []
        assert scopes_of(world["stager"]) == ["orders:read"]

    def test_an_item_whose_grant_went_is_marked_so(self, world, fallback):
        campaign = start(fallback)
        client_services.scope_revoke(
            actor=Actor.cli(),
            client=world["stager"],
            scope=ScopeGrant.objects.get(client=world["stager"]).scope,
        )
        target = item(campaign, "Stager", "orders:read")
        decided = campaigns.campaign_decide(
            actor=Actor.cli(), campaign=campaign, items=[target], decision="keep", justification="x"
        )
        target.refresh_from_db()
        assert decided == [] and target.grant_gone_at is not None and target.decision == ""
        assert target.state_label() == "grant removed elsewhere"

    def test_each_decision_is_audited(self, world, fallback):
        campaign = start(fallback)
        campaigns.campaign_decide(
            actor=Actor.cli(),
            campaign=campaign,
            items=[item(campaign, "Stager", "orders:read")],
            decision="remove",
            justification="test client retired",
        )
        row = AdminAction.objects.get(action="review.campaign_decide")
        assert (
            row.after["decision"] == "remove"
            and row.after["justification"] == "test client retired"
        )
        assert (
            row.after["change"]
            and AdminAction.objects.filter(action="review.campaign_remove").exists()
        )
        assert AdminAction.objects.filter(
            action="scope.revoke", target_id=world["stager"].client_id
        ).exists()


class TestDeadline:
    @pytest.mark.parametrize(
        ("policy", "expected"),
        [
            ("keep", ("keep", "keep", "keep")),
            ("remove", ("remove", "remove", "remove")),
            ("recommendation", ("keep", "remove", "remove")),
        ],
    )
    def test_the_no_response_policy_decides_what_is_pending(
        self, world, fallback, clock, policy, expected
    ):
        campaign = start(fallback, policy=policy)
        campaigns.campaign_decide(
            actor=Actor.cli(),
            campaign=campaign,
            items=[item(campaign, "Stager", "orders:read")],
            decision="keep",
            justification="still testing",
        )
        clock.shift(days(15))
        assert campaigns.campaigns_run() == {"closed": 1, "reminded": 0}
        checkout = campaign.items.filter(client_name="Checkout")
        expected = dict(
            zip(["orders:read", "orders:write", "payments:refund"], expected, strict=True)
        )
        assert {i.scope: i.decision for i in checkout} == expected
        assert {i.decided_by_label for i in checkout} == {"policy"}
        assert item(campaign, "Stager", "orders:read").decided_by_label == "cli"
        kept = sorted(scope for scope, decision in expected.items() if decision == "keep")
        assert scopes_of(world["checkout"]) == kept
        campaign.refresh_from_db()
        assert campaign.status == "closed"

    def test_the_policy_at_the_deadline_says_so(self, world, fallback, clock):
        campaign = start(fallback, policy="keep")
        clock.shift(days(15))
        campaigns.campaigns_run()
        justification = item(campaign, "Checkout", "orders:read").justification
        assert justification == (
            "No decision by the deadline: keep the grant (the campaign's no-response policy)."
        )

    def test_closing_early_does_not_claim_the_deadline_passed(self, world, fallback, clock):
        campaign = start(fallback, policy="keep")
        clock.shift(days(3))
        campaigns.campaign_close(actor=Actor.cli(), campaign=campaign)
        justification = item(campaign, "Checkout", "orders:read").justification
        assert justification.startswith("Campaign closed before the deadline, with no decision")
        assert "by the deadline" not in justification

    def test_policy_removals_roll_back_through_the_change(self, world, fallback, clock):
        before = scopes_of(world["checkout"])
        campaign = start(fallback, policy="remove")
        clock.shift(days(15))
        campaigns.campaigns_run()
        change = GrantChange.objects.get(campaign=campaign, client_name="Checkout")
        assert item(campaign, "Checkout", "orders:write").change == change
        services.change_rollback(actor=Actor.cli(), change=change)
        assert scopes_of(world["checkout"]) == before

    def test_a_grant_gone_before_the_deadline_is_marked_not_decided(self, world, fallback, clock):
        campaign = start(fallback, policy="remove")
        grant = ScopeGrant.objects.get(client=world["stager"])
        client_services.scope_revoke(actor=Actor.cli(), client=world["stager"], scope=grant.scope)
        clock.shift(days(15))
        campaigns.campaigns_run()
        gone = item(campaign, "Stager", "orders:read")
        assert gone.grant_gone_at is not None and gone.decision == "" and gone.change is None
        assert not GrantChange.objects.filter(client_name="Stager").exists()

    def test_running_twice_changes_nothing_more(self, world, fallback, clock):
        start(fallback, policy="remove")
        clock.shift(days(15))
        campaigns.campaigns_run()
        snapshot = (AdminAction.objects.count(), GrantChange.objects.count())
        assert campaigns.campaigns_run() == {"closed": 0, "reminded": 0}
        assert (AdminAction.objects.count(), GrantChange.objects.count()) == snapshot

    def test_nothing_closes_before_the_deadline(self, world, fallback, clock):
        campaign = start(fallback, policy="remove")
        clock.shift(days(13))
        assert campaigns.campaigns_run()["closed"] == 0
        campaign.refresh_from_db()
        assert campaign.is_open() and len(scopes_of(world["checkout"])) == 3

    def test_closing_is_audited(self, world, fallback, clock):
        campaign = start(fallback, policy="keep")
        campaigns.campaign_close(actor=Actor.cli(), campaign=campaign)
        row = AdminAction.objects.get(action="review.campaign_close")
        assert row.after == {"decided_by_policy": 4, "no_response_policy": "keep", "next": None}
        with pytest.raises(campaigns.CampaignClosed):
            campaigns.campaign_close(actor=Actor.cli(), campaign=campaign)
        with pytest.raises(campaigns.CampaignClosed):
            campaigns.campaign_decide(
                actor=Actor.cli(), campaign=campaign, items=[], decision="keep", justification="x"
            )


class TestReminders:
    def test_each_reminder_is_sent_once(
        self, world, fallback, owner, clock, django_capture_on_commit_callbacks
    ):
        start(fallback)  # deadline in 14 days
        with django_capture_on_commit_callbacks(execute=True):
            assert campaigns.campaigns_run()["reminded"] == 0
            clock.shift(days(7) + timedelta(hours=1))  # 6 days 23 hours left
            assert campaigns.campaigns_run()["reminded"] == 1
            assert campaigns.campaigns_run()["reminded"] == 0
            week = ReviewCampaign.objects.get().week_reminder_at
            clock.shift(days(6))  # 23 hours left
            assert campaigns.campaigns_run()["reminded"] == 1
            assert campaigns.campaigns_run()["reminded"] == 0
            assert ReviewCampaign.objects.get().week_reminder_at == week
        reminders = [m for m in mail.outbox if m.subject.startswith("[Keyward] Reminder")]
        assert len(reminders) == 4  # two reviewers, twice
        assert {m.to[0] for m in reminders} == {owner.email, fallback.email}

    def test_only_reviewers_with_pending_items_are_reminded(
        self, world, fallback, owner, clock, django_capture_on_commit_callbacks
    ):
        campaign = start(fallback)
        campaigns.campaign_decide(
            actor=Actor.cli(),
            campaign=campaign,
            items=[item(campaign, "Stager", "orders:read")],
            decision="keep",
            justification="x",
        )
        clock.shift(days(8))
        with django_capture_on_commit_callbacks(execute=True):
            campaigns.campaigns_run()
        assert [m.to for m in mail.outbox] == [[owner.email]]

    def test_a_late_campaign_gets_only_the_last_reminder(
        self, world, fallback, clock, django_capture_on_commit_callbacks
    ):
        start(fallback, deadline=None)
        clock.shift(days(13) + timedelta(hours=1))  # both reminders due at once
        with django_capture_on_commit_callbacks(execute=True):
            assert campaigns.campaigns_run()["reminded"] == 1
            assert campaigns.campaigns_run()["reminded"] == 0

    def test_a_short_campaign_starts_without_a_reminder_due(self, world, fallback):
        from django.utils import timezone

        campaign = start(fallback, deadline=timezone.now() + days(3))
        assert campaign.week_reminder_at is not None and campaign.day_reminder_at is None


class TestRecurrence:
    def test_closing_a_quarterly_campaign_starts_the_next(self, world, fallback, clock):
        campaign = start(fallback, recurrence="quarterly", policy="keep")
        clock.shift(days(15))
        campaigns.campaigns_run()
        successor = ReviewCampaign.objects.get(previous=campaign)
        assert successor.deadline == campaign.deadline + campaigns.RECURRENCE_STEP["quarterly"]
        assert successor.is_open() and successor.items.count() == 4
        assert successor.recurrence == "quarterly" and successor.fallback_reviewer == fallback
        close = AdminAction.objects.get(action="review.campaign_close")
        assert close.after["next"] == str(successor.pk)
        assert campaigns.campaigns_run()["closed"] == 0  # the successor is not due

    def test_a_half_yearly_deadline_is_six_calendar_months_on(self, world, fallback):
        from datetime import UTC, datetime

        campaign = ReviewCampaign(
            recurrence="half_yearly", deadline=datetime(2026, 3, 31, 23, 59, tzinfo=UTC)
        )
        now = datetime(2026, 4, 1, tzinfo=UTC)
        assert campaigns.next_deadline(campaign, now) == datetime(2026, 9, 30, 23, 59, tzinfo=UTC)

    def test_a_one_off_campaign_has_no_successor(self, world, fallback, clock):
        campaign = start(fallback)
        clock.shift(days(15))
        campaigns.campaigns_run()
        assert not ReviewCampaign.objects.filter(previous=campaign).exists()


class TestCommand:
    def run(self, *args) -> str:
        from io import StringIO

        from django.core.management import call_command

        out = StringIO()
        call_command("scope_review", "campaigns", *args, stdout=out)
        return out.getvalue()

    def test_it_lists_campaigns_with_their_pending_counts(self, world, fallback):
        campaign = start(fallback)
        lines = self.run().splitlines()
        assert lines[0].startswith(f"{campaign.pk}\topen\t") and "4/4 pending" in lines[0]
        assert lines[-1] == "1 campaign(s)"

    def test_run_closes_what_is_due(self, world, fallback, clock):
        campaign = start(fallback)
        clock.shift(days(15))
        output = self.run("--run")
        assert output.startswith("closed 1, reminders sent 0")
        assert f"{campaign.pk}\tclosed\t" in output and "0/4 pending" in output
