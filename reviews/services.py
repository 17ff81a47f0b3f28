"""Writes of the scope review: archiving findings, applying a least-privilege change and
rolling it back. Grants change only through clients.services (each grant audited there);
these add the review's own audit row in the same transaction and mail the owner after
commit."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import Actor, admin_action_record
from clients import services as client_services
from clients.models import Client, Scope

from .models import ArchiveRule, Finding, GrantChange, ReviewCampaign
from .notifications import change_notify_on_commit
from .recommendations import recommendation_for
from .selectors import GrantUsage


class NothingToApply(Exception):
    pass


class RollbackRefused(Exception):
    pass


def finding_archive(
    *, actor: Actor, finding: Finding, reason: str, as_rule: bool = False
) -> Finding:
    """Archive a finding with a reason; with `as_rule`, future findings like it too."""
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "Say why this is a known exception."})
    with transaction.atomic():
        rule = None
        if as_rule:
            rule = ArchiveRule.objects.create(
                kind=finding.kind,
                client_id=finding.client_id,
                scope=finding.scope,
                reason=reason,
                created_by=actor.user if actor.user and actor.user.is_authenticated else None,
            )
        finding.status, finding.archived_at = Finding.Status.ARCHIVED, timezone.now()
        finding.archive_reason, finding.archive_rule = reason, rule
        finding.archived_by = actor.user if actor.user and actor.user.is_authenticated else None
        finding.save()
        admin_action_record(
            actor=actor,
            action="review.finding_archive",
            target_type="finding",
            target_id=str(finding.pk),
            target_label=str(finding)[:200],
            after={"reason": reason, "rule": rule.pk if rule else None},
        )
    return finding


def recommendation_apply(
    *, actor: Actor, client: Client, now: datetime | None = None
) -> GrantChange:
    """Remove the grants the recommendation names; returns the change (for a rollback)."""
    recommendation = recommendation_for(client, now=now)
    if recommendation.is_empty():
        raise NothingToApply(f"{client.name} holds no unused scope: nothing to remove.")
    with transaction.atomic():
        return grants_remove(
            actor=actor,
            client=client,
            usages=recommendation.remove,
            action="review.apply",
            note={"days_unused": recommendation.days},
        )


def grants_remove(
    *,
    actor: Actor,
    client: Client,
    usages: list[GrantUsage],
    action: str,
    note: dict,
    campaign: ReviewCampaign | None = None,
) -> GrantChange:
    """Remove these grants as one change that a rollback can undo for 30 days: the change
    row keeps each grant as it was, the grants go through clients.services (each audited
    there), `action` is audited with `note`, and the owner is mailed after commit."""
    removed = [
        {
            "scope": usage.grant.scope.name,
            "reason": usage.grant.reason,
            "granted_at": usage.grant.granted_at.isoformat(),
            "granted_by_id": usage.grant.granted_by_id,
            "evidence": usage.evidence(),
        }
        for usage in usages
    ]
    with transaction.atomic():
        change = GrantChange.objects.create(
            client_id=client.client_id,
            client_name=client.name,
            removed=removed,
            applied_by_label=actor.label,
            campaign=campaign,
        )
        for usage in usages:
            client_services.scope_revoke(actor=actor, client=client, scope=usage.grant.scope)
        admin_action_record(
            actor=actor,
            action=action,
            target_type="client",
            target_id=client.client_id,
            target_label=client.name,
            before={"scopes": [entry["scope"] for entry in removed]},
            after={"change": str(change.pk), **note},
        )
        change_notify_on_commit(change, client=client, event="applied")
    return change


def change_rollback(*, actor: Actor, change: GrantChange) -> GrantChange:
    """Put back the grants a change removed, with their reasons, times and granters."""
    with transaction.atomic():
        change = GrantChange.objects.select_for_update().get(pk=change.pk)
        if change.rolled_back_at is not None:
            raise RollbackRefused("This change was already rolled back.")
        if not change.can_roll_back():
            raise RollbackRefused("Changes can be rolled back for 30 days; this one is older.")
        client = Client.objects.filter(client_id=change.client_id).first()
        if client is None:
            raise RollbackRefused("The client no longer exists.")
        scopes = {s.name: s for s in Scope.objects.filter(name__in=change.scope_names())}
        missing = sorted(set(change.scope_names()) - set(scopes))
        if missing:
            raise RollbackRefused(f"Scopes deleted since: {', '.join(missing)}.")
        for entry in change.removed:
            client_services.scope_grant_restore(
                actor=actor,
                client=client,
                scope=scopes[entry["scope"]],
                reason=entry["reason"],
                granted_at=datetime.fromisoformat(entry["granted_at"]),
                granted_by_id=entry["granted_by_id"],
            )
        change.rolled_back_at, change.rolled_back_by_label = timezone.now(), actor.label
        change.save(update_fields=["rolled_back_at", "rolled_back_by_label"])
        admin_action_record(
            actor=actor,
            action="review.rollback",
            target_type="client",
            target_id=client.client_id,
            target_label=client.name,
            after={"change": str(change.pk), "scopes": change.scope_names()},
        )
        change_notify_on_commit(change, client=client, event="rolled back")
    return change
