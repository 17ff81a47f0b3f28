"""Review campaigns: start one over a selection of grants, decide its items (one by one or
in bulk), and the periodic run that mails reminders and closes campaigns at the deadline.

A remove decision takes effect at once, through services.grants_remove: one GrantChange per
client and decision batch, which the change page can roll back for 30 days. At the
deadline the no-response policy decides what is still pending, as "policy".
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q, Value
from django.db.models.functions import Coalesce, Lower
from django.utils import timezone

from audit.services import Actor, admin_action_record
from base.roles import ROLE_BY_GROUP
from clients.models import Client, ScopeGrant

from . import selectors
from .models import POLICY_LABEL, CampaignItem, ReviewCampaign
from .notifications import campaign_mail_on_commit
from .scan import unused_after_days
from .services import grants_remove

log = logging.getLogger("keyward.reviews")

Decision = CampaignItem.Decision
# (field claimed once, how long before the deadline), the most urgent first.
REMINDERS = (("day_reminder_at", timedelta(days=1)), ("week_reminder_at", timedelta(days=7)))
RECURRENCE_STEP = {
    ReviewCampaign.Recurrence.QUARTERLY: relativedelta(months=3),
    ReviewCampaign.Recurrence.HALF_YEARLY: relativedelta(months=6),
}


class CampaignClosed(Exception):
    pass


def campaign_grants(*, selection: str, selection_value: str = ""):
    """The grants a selection covers, as selectors.grants_filtered narrows the matrix."""
    Selection = ReviewCampaign.Selection
    filters = {
        Selection.ALL: {},
        Selection.ENVIRONMENT: {"environment": selection_value},
        Selection.TEAM: {"team": selection_value},
        Selection.SENSITIVE: {"sensitive_only": True},
    }[selection]
    return selectors.grants_filtered(**filters)


def console_users():
    """Active users holding a role: the only ones who can open a decision page."""
    return (
        User.objects.filter(is_active=True)
        .filter(Q(is_superuser=True) | Q(groups__name__in=list(ROLE_BY_GROUP)))
        .distinct()
        .order_by("username")
    )


def reviewers_by_email(emails: set[str]) -> dict[str, User]:
    """Lower-cased email → the console user with it (the oldest account when several)."""
    lowered = {email.strip().lower() for email in emails if email.strip()}
    users = (
        console_users()
        .annotate(email_lower=Lower("email"))
        .filter(email_lower__in=lowered)
        .order_by("-pk")
    )
    return {user.email_lower: user for user in users}


def _snapshot(usage: selectors.GrantUsage, *, days: int, now: datetime) -> dict:
    """The evidence and recommendation for one grant, as the decision page shows them."""
    remove = usage.unused_for(days, now)
    return {
        "evidence": usage.evidence() | {"recency": usage.recency(now)},
        "recommendation": Decision.REMOVE if remove else Decision.KEEP,
    }


def _check_start(*, name: str, deadline: datetime, fallback_reviewer: User | None, now) -> None:
    errors = {}
    if not name.strip():
        errors["name"] = "Give the campaign a name."
    if deadline <= now:
        errors["deadline"] = "The deadline must be in the future."
    if fallback_reviewer is None or not console_users().filter(pk=fallback_reviewer.pk).exists():
        errors["fallback_reviewer"] = "Choose an active console user as the fallback reviewer."
    if errors:
        raise ValidationError(errors)


def campaign_start(
    *,
    actor: Actor,
    name: str,
    selection: str,
    deadline: datetime,
    no_response_policy: str,
    fallback_reviewer: User | None,
    selection_value: str = "",
    recurrence: str = "",
    previous: ReviewCampaign | None = None,
    now: datetime | None = None,
) -> ReviewCampaign:
    """Snapshot every selected grant as an item for its client's owner (a console user with
    the owner's email) or the fallback reviewer, audit, and mail each reviewer after commit."""
    now = now or timezone.now()
    _check_start(name=name, deadline=deadline, fallback_reviewer=fallback_reviewer, now=now)
    grants = campaign_grants(selection=selection, selection_value=selection_value)
    usages = selectors.grants_usage(grants, now=now)
    if not usages:
        raise ValidationError("No grant matches this selection: there is nothing to review.")
    owners = reviewers_by_email({usage.grant.client.owner_email for usage in usages})
    days = unused_after_days()
    with transaction.atomic():
        campaign = ReviewCampaign.objects.create(
            name=name.strip(),
            selection=selection,
            selection_value=selection_value,
            deadline=deadline,
            recurrence=recurrence,
            no_response_policy=no_response_policy,
            fallback_reviewer=fallback_reviewer,
            created_at=now,
            created_by_label=actor.label,
            previous=previous,
            # A reminder whose time has already come is covered by the start email.
            **{field: now for field, lead in REMINDERS if deadline - lead <= now},
        )
        items = []
        for usage in usages:
            grant, client = usage.grant, usage.grant.client
            reviewer = owners.get(client.owner_email.strip().lower(), fallback_reviewer)
            items.append(
                CampaignItem(
                    campaign=campaign,
                    client_id=client.client_id,
                    client_name=client.name,
                    environment=client.environment,
                    owner_email=client.owner_email,
                    scope=grant.scope.name,
                    sensitive=grant.scope.sensitive,
                    grant_reason=grant.reason,
                    granted_at=grant.granted_at,
                    reviewer=reviewer,
                    reviewer_label=reviewer.get_username(),
                    **_snapshot(usage, days=days, now=now),
                )
            )
        CampaignItem.objects.bulk_create(items)
        admin_action_record(
            actor=actor,
            action="review.campaign_start",
            target_type="campaign",
            target_id=str(campaign.pk),
            target_label=campaign.name,
            after={
                "selection": campaign.selection_label(),
                "deadline": deadline.isoformat(),
                "recurrence": recurrence,
                "no_response_policy": no_response_policy,
                "fallback_reviewer": fallback_reviewer.get_username(),
                "items": len(items),
                "previous": str(previous.pk) if previous else None,
            },
        )
        _mail_reviewers(campaign, kind="started")
    return campaign


def campaign_decide(
    *,
    actor: Actor,
    campaign: ReviewCampaign,
    items: list[CampaignItem],
    decision: str,
    justification: str,
    now: datetime | None = None,
) -> list[CampaignItem]:
    """Keep or remove these items' grants, with one justification. Items decided meanwhile
    (another tab, another reviewer) are left as they are; returns the ones decided now."""
    justification = justification.strip()
    if not justification:
        raise ValidationError({"justification": "Say why: a justification is required."})
    if decision not in Decision.values:
        raise ValidationError({"decision": "Choose keep or remove."})
    with transaction.atomic():
        locked = ReviewCampaign.objects.select_for_update().get(pk=campaign.pk)
        if not locked.is_open():
            raise CampaignClosed(f"{campaign.name} is closed: decisions are final.")
        pending = list(
            CampaignItem.objects.select_for_update()
            .filter(campaign=campaign, pk__in=[item.pk for item in items])
            .filter(decision="", grant_gone_at__isnull=True)
        )
        decisions = {item.pk: decision for item in pending}
        return _record(
            actor=actor,
            campaign=campaign,
            items=pending,
            decisions=decisions,
            justification=justification,
            decided_by=actor.label,
            now=now or timezone.now(),
        )


def _live_usage(items: list[CampaignItem], now: datetime) -> dict[tuple[str, str], object]:
    """(client_id, scope) → the grant's usage today, for the items whose grant still exists."""
    pairs = {(item.client_id, item.scope) for item in items}
    grants = ScopeGrant.objects.filter(
        client__client_id__in={c for c, _ in pairs}, scope__name__in={s for _, s in pairs}
    )
    usages = selectors.grants_usage(grants, now=now)
    return {
        key: usage
        for usage in usages
        if (key := (usage.grant.client.client_id, usage.grant.scope.name)) in pairs
    }


def items_with_live_usage(items: list[CampaignItem], *, now=None) -> list[CampaignItem]:
    """Set `live` (the grant's usage today, or None when it is gone) and `suggested` (the
    recommendation today) on each item, for the decision page."""
    now = now or timezone.now()
    live, days = _live_usage(items, now), unused_after_days()
    for item in items:
        item.live = live.get((item.client_id, item.scope))
        item.suggested = (
            _snapshot(item.live, days=days, now=now)["recommendation"]
            if item.live
            else item.recommendation
        )
    return items


def _record(
    *,
    actor: Actor,
    campaign: ReviewCampaign,
    items: list[CampaignItem],
    decisions: dict[int, str],
    justification: str,
    decided_by: str,
    now: datetime,
) -> list[CampaignItem]:
    """Write the decisions (evidence refreshed to what was true when deciding), remove the
    'remove' grants as one change per client, mark items whose grant is gone, audit each."""
    live, days = _live_usage(items, now), unused_after_days()
    decided, removals = [], defaultdict(list)
    for item in items:
        usage = live.get((item.client_id, item.scope))
        if usage is None:
            item.grant_gone_at = now
            continue
        snapshot = _snapshot(usage, days=days, now=now)
        item.evidence, item.recommendation = snapshot["evidence"], snapshot["recommendation"]
        item.decision, item.decided_by_label = decisions[item.pk], decided_by
        item.decided_at, item.justification = now, justification[:500]
        decided.append(item)
        if item.decision == Decision.REMOVE:
            removals[item.client_id].append((item, usage))
    _apply_removals(actor=actor, campaign=campaign, removals=removals, decided_by=decided_by)
    CampaignItem.objects.bulk_update(
        items,
        ["evidence", "recommendation", "decision", "decided_by_label", "decided_at"]
        + ["justification", "grant_gone_at", "change"],
    )
    for item in items:
        _audit_item(actor=actor, campaign=campaign, item=item)
    return decided


def _apply_removals(*, actor: Actor, campaign: ReviewCampaign, removals, decided_by: str):
    clients = Client.objects.in_bulk(list(removals), field_name="client_id")
    for client_id, pairs in removals.items():
        change = grants_remove(
            actor=actor,
            client=clients[client_id],
            usages=[usage for _item, usage in pairs],
            action="review.campaign_remove",
            note={"campaign": str(campaign.pk), "decided_by": decided_by},
            campaign=campaign,
        )
        for item, _usage in pairs:
            item.change = change


def _audit_item(*, actor: Actor, campaign: ReviewCampaign, item: CampaignItem) -> None:
    if item.grant_gone_at is not None:
        after = {"grant_gone": True}
    else:
        after = {
            "decision": item.decision,
            "decided_by": item.decided_by_label,
            "justification": item.justification,
            "change": str(item.change_id) if item.change_id else None,
        }
    admin_action_record(
        actor=actor,
        action="review.campaign_decide",
        target_type="campaign",
        target_id=str(campaign.pk),
        target_label=f"{campaign.name}: {item.client_name} {item.scope}",
        after={"client_id": item.client_id, "scope": item.scope, **after},
    )


def _policy_justification(campaign: ReviewCampaign, now: datetime) -> str:
    """Why the policy decided: the deadline passed, or an admin closed the campaign early
    (then the reviewer still had time, and the record must not say otherwise)."""
    policy = campaign.get_no_response_policy_display().lower()
    if campaign.is_past_deadline(now):
        why = "No decision by the deadline"
    else:
        why = "Campaign closed before the deadline, with no decision"
    return f"{why}: {policy} (the campaign's no-response policy)."


def _policy_decisions(campaign: ReviewCampaign, items: list[CampaignItem], now) -> dict:
    policy = campaign.no_response_policy
    if policy != ReviewCampaign.Policy.RECOMMENDATION:
        return {item.pk: policy for item in items}
    items_with_live_usage(items, now=now)
    return {item.pk: item.suggested for item in items}


def campaign_close(
    *, actor: Actor, campaign: ReviewCampaign, now: datetime | None = None
) -> ReviewCampaign:
    """Apply the no-response policy to what is still pending (decided by "policy"), close
    the campaign, and start the next one when it recurs. Raises CampaignClosed when it was
    closed already (by another run or an admin)."""
    now = now or timezone.now()
    with transaction.atomic():
        campaign = ReviewCampaign.objects.select_for_update().get(pk=campaign.pk)
        if not campaign.is_open():
            raise CampaignClosed(f"{campaign.name} is already closed.")
        pending = list(
            campaign.items.select_for_update().filter(decision="", grant_gone_at__isnull=True)
        )
        _record(
            actor=actor,
            campaign=campaign,
            items=pending,
            decisions=_policy_decisions(campaign, pending, now),
            justification=_policy_justification(campaign, now),
            decided_by=POLICY_LABEL,
            now=now,
        )
        campaign.status, campaign.closed_at = ReviewCampaign.Status.CLOSED, now
        campaign.closed_by_label = actor.label
        campaign.save(update_fields=["status", "closed_at", "closed_by_label"])
        successor = _recur(actor=actor, campaign=campaign, now=now)
        admin_action_record(
            actor=actor,
            action="review.campaign_close",
            target_type="campaign",
            target_id=str(campaign.pk),
            target_label=campaign.name,
            after={
                "decided_by_policy": len(pending),
                "no_response_policy": campaign.no_response_policy,
                "next": str(successor.pk) if successor else None,
            },
        )
    return campaign


def next_deadline(campaign: ReviewCampaign, now: datetime) -> datetime:
    """The deadline one period on, skipping periods already past (a campaign closed late)."""
    step, deadline = RECURRENCE_STEP[campaign.recurrence], campaign.deadline
    while deadline <= now:
        deadline += step
    return deadline


def _recur(*, actor: Actor, campaign: ReviewCampaign, now) -> ReviewCampaign | None:
    if not campaign.recurrence:
        return None
    try:
        return campaign_start(
            actor=actor,
            name=campaign.name,
            selection=campaign.selection,
            selection_value=campaign.selection_value,
            deadline=next_deadline(campaign, now),
            recurrence=campaign.recurrence,
            no_response_policy=campaign.no_response_policy,
            fallback_reviewer=campaign.fallback_reviewer,
            previous=campaign,
            now=now,
        )
    except ValidationError as exc:
        # No grants left to review, or the fallback reviewer is gone: the close stands, and
        # the audit row's "next": null says no successor was started.
        log.warning("campaign %s not renewed: %s", campaign.pk, "; ".join(exc.messages))
        return None


def campaigns_run(*, now: datetime | None = None) -> dict[str, int]:
    """The periodic job: close campaigns past their deadline, then mail due reminders.
    Idempotent: a second run finds nothing to close and every reminder claimed."""
    now = now or timezone.now()
    closed = 0
    for campaign in ReviewCampaign.objects.filter(status="open", deadline__lte=now):
        try:
            campaign_close(actor=Actor.system(), campaign=campaign, now=now)
        except CampaignClosed:
            continue
        closed += 1
    return {"closed": closed, "reminded": _send_reminders(now)}


def _send_reminders(now: datetime) -> int:
    """Claim each due reminder with a conditional UPDATE (… WHERE field IS NULL) and mail
    the reviewers with pending items only when this run claimed it. Claiming the 1-day
    reminder also claims a 7-day one not yet sent, so nobody gets both at once."""
    sent = 0
    for index, (field, lead) in enumerate(REMINDERS):
        due = ReviewCampaign.objects.filter(
            status="open", deadline__gt=now, deadline__lte=now + lead, **{f"{field}__isnull": True}
        )
        for campaign in due:
            # The later reminders keep their own time when they went out already.
            claims = {field: now} | {
                name: Coalesce(name, Value(now)) for name, _ in REMINDERS[index + 1 :]
            }
            with transaction.atomic():
                claimed = ReviewCampaign.objects.filter(
                    pk=campaign.pk, **{f"{field}__isnull": True}
                ).update(**claims)
                if claimed:
                    _mail_reviewers(campaign, kind="reminder")
                    sent += 1
    return sent


def _mail_reviewers(campaign: ReviewCampaign, *, kind: str) -> None:
    """One email per reviewer with pending items in the campaign, after commit."""
    counts = (
        campaign.items.filter(decision="", grant_gone_at__isnull=True, reviewer__isnull=False)
        .values("reviewer")
        .annotate(pending=Count("pk"))
    )
    users = User.objects.in_bulk([row["reviewer"] for row in counts])
    for row in counts:
        user = users[row["reviewer"]]
        if user.email and user.is_active:
            campaign_mail_on_commit(campaign, to=user.email, pending=row["pending"], kind=kind)


def pending_for(*, user: User, is_admin: bool):
    """Open-campaign items waiting for this user (every reviewer's, for an admin)."""
    items = CampaignItem.objects.filter(
        campaign__status="open", decision="", grant_gone_at__isnull=True
    )
    return items if is_admin else items.filter(reviewer=user)


def campaigns_waiting_for(user: User) -> list[ReviewCampaign]:
    """Open campaigns with items pending this user's decision, each with `waiting` (count)."""
    pending = Q(items__decision="", items__grant_gone_at__isnull=True, items__reviewer=user)
    return list(
        ReviewCampaign.objects.filter(status="open")
        .annotate(waiting=Count("items", filter=pending))
        .filter(waiting__gt=0)
        .order_by("deadline")
    )
