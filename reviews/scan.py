"""The findings scan: which review conditions hold now, written as Finding rows.

Idempotent: each condition has a key (kind, client_id, scope). A run opens rows for new
conditions (or archives them when an archive rule matches), refreshes the evidence of the
ones still holding, resolves the ones that ended, and reopens resolved ones that came back.
Archived rows stay archived while their condition holds.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import Actor, admin_action_record
from clients.models import Client, Scope, ScopeGrant
from security.scan import DORMANT_AFTER

from . import selectors
from .models import ArchiveRule, Finding

Kind = Finding.Kind
Status = Finding.Status
Key = tuple[str, str, str]  # (kind, client_id, scope)


def unused_after_days() -> int:
    return int(getattr(settings, "KEYWARD_REVIEW_UNUSED_DAYS", 90))


def conditions_now(now: datetime) -> dict[Key, tuple[str, dict]]:
    """Every condition that holds at `now`: key → (client name, evidence)."""
    days = unused_after_days()
    found: dict[Key, tuple[str, dict]] = {}
    usages = selectors.grants_usage(
        ScopeGrant.objects.order_by("client__name", "scope__name"), now=now
    )
    for usage in usages:
        grant, client = usage.grant, usage.grant.client
        key = (client.client_id, grant.scope.name)
        if usage.unused_for(days, now):
            found[(Kind.UNUSED_GRANT, *key)] = (client.name, usage.evidence() | {"days": days})
        if grant.scope.sensitive and client.environment != Client.Environment.PRODUCTION:
            found[(Kind.SENSITIVE_NONPROD, *key)] = (
                client.name,
                {"environment": client.environment, "granted_at": _iso(grant.granted_at)},
            )
        if not grant.reason.strip():
            found[(Kind.NO_REASON, *key)] = (client.name, {"granted_at": _iso(grant.granted_at)})
    _client_conditions(found, usages, now)
    _scope_conditions(found, now, days)
    return found


def _client_conditions(found: dict, usages: list, now: datetime) -> None:
    scopes_of: dict[str, list[str]] = {}
    for usage in usages:
        scopes_of.setdefault(usage.grant.client.client_id, []).append(usage.grant.scope.name)
    for client in Client.objects.all():
        if not client.owner_email.strip():
            found[(Kind.NO_OWNER, client.client_id, "")] = (client.name, {})
        scopes = scopes_of.get(client.client_id)
        state = _inactive_state(client, now)
        if scopes and state:
            found[(Kind.INACTIVE_CLIENT, client.client_id, "")] = (
                client.name,
                {"state": state, "last_used_at": _iso(client.last_used_at), "scopes": scopes},
            )


def _inactive_state(client: Client, now: datetime) -> str:
    if not client.is_active():
        return "disabled"
    last = client.last_used_at or client.created_at
    return "dormant" if last < now - DORMANT_AFTER else ""


def _scope_conditions(found: dict, now: datetime, days: int) -> None:
    since = now - timedelta(days=days)
    scopes = list(Scope.objects.filter(created_at__lte=since))
    last_used = selectors.scope_last_used(scopes=[s.name for s in scopes])
    for scope in scopes:
        last = last_used.get(scope.name)
        if last is None or last < since:
            holders = scope.grants.count()
            found[(Kind.SCOPE_UNUSED, "", scope.name)] = (
                "",
                {"last_used": _iso(last), "holders": holders, "days": days},
            )


def findings_scan(*, now: datetime | None = None) -> dict[str, int]:
    """Bring Finding rows in line with the conditions that hold now; returns counts."""
    now = now or timezone.now()
    found = conditions_now(now)
    rules = list(ArchiveRule.objects.all())
    counts = {"opened": 0, "archived": 0, "resolved": 0, "kept": 0}
    with transaction.atomic():
        existing = {(f.kind, f.client_id, f.scope): f for f in Finding.objects.select_for_update()}
        for key, (client_name, evidence) in found.items():
            finding = existing.get(key)
            counts[_upsert(finding, key, client_name, evidence, rules, now)] += 1
        for key, finding in existing.items():
            if key not in found and finding.status != Status.RESOLVED:
                _resolve(finding, now)
                counts["resolved"] += 1
    return counts


def _upsert(finding, key: Key, client_name: str, evidence: dict, rules, now) -> str:
    if finding is not None and finding.status != Status.RESOLVED:
        finding.evidence, finding.last_seen_at, finding.client_name = evidence, now, client_name
        finding.save(update_fields=["evidence", "last_seen_at", "client_name"])
        return "kept"
    kind, client_id, scope = key
    finding = finding or Finding(kind=kind, client_id=client_id, scope=scope)
    finding.client_name, finding.evidence = client_name, evidence
    finding.opened_at = finding.last_seen_at = now
    finding.resolved_at = finding.archived_at = finding.archived_by = None
    finding.status, finding.archive_reason, finding.archive_rule = Status.OPEN, "", None
    rule = next((r for r in rules if r.matches(finding)), None)
    if rule is not None:
        finding.status, finding.archive_rule = Status.ARCHIVED, rule
        finding.archived_at, finding.archive_reason = now, rule.reason
    finding.save()
    _audit(finding, "review.finding_" + ("archive" if rule else "open"))
    return "archived" if rule else "opened"


def _resolve(finding: Finding, now: datetime) -> None:
    finding.status, finding.resolved_at = Status.RESOLVED, now
    finding.save(update_fields=["status", "resolved_at"])
    _audit(finding, "review.finding_resolve")


def _audit(finding: Finding, action: str) -> None:
    admin_action_record(
        actor=Actor.system(),
        action=action,
        target_type="finding",
        target_id=str(finding.pk),
        target_label=str(finding)[:200],
        after={
            "kind": finding.kind,
            "client_id": finding.client_id,
            "scope": finding.scope,
            "status": finding.status,
            "reason": finding.archive_reason,
        },
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
