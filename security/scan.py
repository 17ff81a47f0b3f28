"""The stale-secret scan: findings, their digest emails and the optional auto-actions.

`secrets_scan()` runs hourly from Celery beat (security.tasks.scan_stale_secrets) and is
safe to run twice or concurrently: findings are opened with a conditional insert against
the open-finding unique constraints, and notifications are claimed with a conditional
UPDATE, so each finding is recorded once and mailed once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from operator import attrgetter

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import Actor
from clients.models import Client, ClientSecret
from clients.services import client_set_status

from .models import DEFAULT_MAX_SECRET_AGE_DAYS, NotificationLog, SecretFinding, SecretPolicy
from .notifications import absolute_url, notification_queue, recipients_for
from .services import client_secret_revoke

EXPIRING_WITHIN = timedelta(days=14)
UNUSED_AFTER = timedelta(days=30)
DORMANT_AFTER = timedelta(days=30)

Kind = SecretFinding.Kind
FindingKey = tuple[str, int, int | None]  # (kind, client pk, secret pk or None)


@dataclass
class ScanResult:
    opened: int = 0
    updated: int = 0
    closed: int = 0
    notified: int = 0
    emails: int = 0
    auto_revoked: int = 0
    auto_disabled: int = 0


def secrets_scan(now: datetime | None = None) -> ScanResult:
    """One pass of the scan.

    1. Auto-actions the environment policies switch on (revoke replaced-and-unused
       secrets, disable dormant clients), so the findings below see their effect.
    2. Work out every condition that holds now.
    3. Open findings for new conditions, refresh open ones, close the ones fixed.
    4. Claim findings nobody was told about and queue one digest per owner, plus one
       for the security mailbox.
    """
    now = now or timezone.now()
    result = ScanResult()
    policies = _policies()
    _auto_actions(policies, now, result)
    _record(_conditions(policies, now), now, result)
    _notify_new(now, result)
    return result


def _policies() -> dict[str, SecretPolicy]:
    """Fresh from the database (not the cache): the scan runs rarely and must not lag."""
    stored = {policy.environment: policy for policy in SecretPolicy.objects.all()}
    return {
        environment: stored.get(environment)
        or SecretPolicy(
            environment=environment,
            max_secret_age_days=DEFAULT_MAX_SECRET_AGE_DAYS.get(environment),
        )
        for environment in Client.Environment.values
    }


def _live_secrets(now: datetime):
    return (
        ClientSecret.objects.valid(now)
        .select_related("client")
        .order_by("client_id", "created_at", "id")
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# Conditions ------------------------------------------------------------------------------


def _conditions(policies: dict[str, SecretPolicy], now: datetime) -> dict[FindingKey, dict]:
    found: dict[FindingKey, dict] = {}
    for _client_pk, group in groupby(_live_secrets(now).iterator(), key=attrgetter("client_id")):
        secrets = list(group)
        newest = secrets[-1]
        for secret in secrets:
            policy = policies[secret.client.environment]
            found.update(
                _secret_conditions(secret, policy, superseded=secret is not newest, now=now)
            )
    dormant = Client.objects.active().filter(
        Q(last_used_at__lt=now - DORMANT_AFTER)
        | Q(last_used_at__isnull=True, created_at__lt=now - DORMANT_AFTER)
    )
    for client in dormant.only("pk", "last_used_at"):
        found[(Kind.CLIENT_DORMANT, client.pk, None)] = {"last_used_at": _iso(client.last_used_at)}
    return found


def _secret_conditions(
    secret: ClientSecret, policy: SecretPolicy, *, superseded: bool, now: datetime
) -> dict[FindingKey, dict]:
    # Details hold only values that change when the situation does (not ages), so an
    # open finding is rewritten only when something really changed.
    base = {"hint": secret.hint, "created_at": _iso(secret.created_at)}
    key = (secret.client_id, secret.pk)
    found: dict[FindingKey, dict] = {}
    max_age = policy.max_age()
    if max_age and secret.created_at < now - max_age:
        found[(Kind.SECRET_TOO_OLD, *key)] = base | {"max_age_days": policy.max_secret_age_days}
    # A replaced secret running out its grace period is the plan, not a risk.
    if secret.expires_at and secret.expires_at <= now + EXPIRING_WITHIN and not superseded:
        found[(Kind.SECRET_EXPIRING, *key)] = base | {"expires_at": _iso(secret.expires_at)}
    if (secret.last_used_at or secret.created_at) < now - UNUSED_AFTER:
        found[(Kind.SECRET_UNUSED, *key)] = base | {"last_used_at": _iso(secret.last_used_at)}
    return found


# Findings --------------------------------------------------------------------------------


def _record(conditions: dict[FindingKey, dict], now: datetime, result: ScanResult) -> None:
    open_findings = {
        (finding.kind, finding.client_id, finding.secret_id): finding
        for finding in SecretFinding.objects.open()
    }
    new = [
        SecretFinding(
            kind=kind,
            client_id=client_pk,
            secret_id=secret_pk,
            first_seen_at=now,
            last_seen_at=now,
            details=details,
        )
        for (kind, client_pk, secret_pk), details in conditions.items()
        if (kind, client_pk, secret_pk) not in open_findings
    ]
    # ON CONFLICT DO NOTHING against the partial unique constraints: when a concurrent
    # scan opened the same finding first, this insert quietly adds nothing.
    SecretFinding.objects.bulk_create(new, ignore_conflicts=True)
    result.opened = len(new)

    unchanged, fixed = [], []
    for key, finding in open_findings.items():
        if key not in conditions:
            fixed.append(finding.pk)
        elif finding.details != conditions[key]:
            result.updated += (
                SecretFinding.objects.open()
                .filter(pk=finding.pk)
                .update(details=conditions[key], last_seen_at=now)
            )
        else:
            unchanged.append(finding.pk)
    SecretFinding.objects.open().filter(pk__in=unchanged).update(last_seen_at=now)
    result.closed = (
        SecretFinding.objects.open()
        .filter(pk__in=fixed)
        .update(state=SecretFinding.State.CLOSED, closed_at=now)
    )


def _notify_new(now: datetime, result: ScanResult) -> None:
    with transaction.atomic():
        # Claim: lock the unnotified rows (skipping any a concurrent scan holds) and stamp
        # them, so a second run finds nothing with notified_at NULL and mails nothing.
        # The emails are queued in this same transaction: no claim without its email.
        ids = list(
            SecretFinding.objects.select_for_update(skip_locked=True)
            .open()
            .filter(notified_at__isnull=True)
            .values_list("pk", flat=True)
        )
        if not ids:
            return
        SecretFinding.objects.filter(pk__in=ids, notified_at__isnull=True).update(notified_at=now)
        findings = list(
            SecretFinding.objects.filter(pk__in=ids)
            .select_related("client", "secret")
            .order_by("client__name", "kind", "secret_id")
        )
        result.notified = len(findings)
        by_owner: dict[str, list[SecretFinding]] = defaultdict(list)
        for finding in findings:
            if finding.client.owner_email.strip():
                by_owner[finding.client.owner_email.strip()].append(finding)
        for owner, owned in by_owner.items():
            result.emails += _queue_digest(owned, [owner], audience="owner")
        if settings.KEYWARD_SECURITY_EMAIL:
            result.emails += _queue_digest(
                findings, [settings.KEYWARD_SECURITY_EMAIL], audience="security"
            )


def _queue_digest(findings: list[SecretFinding], recipients: list[str], *, audience: str) -> int:
    clients = {finding.client_id: finding.client for finding in findings}
    notification = notification_queue(
        kind=NotificationLog.Kind.FINDINGS_DIGEST,
        template="findings_digest",
        context={
            "findings": findings,
            "audience": audience,
            "client_count": len(clients),
            "health_url": absolute_url("security:health"),
        },
        recipients=recipients,
        client=next(iter(clients.values())) if len(clients) == 1 else None,
    )
    return 1 if notification else 0


# Auto-actions ----------------------------------------------------------------------------


def _auto_actions(policies: dict[str, SecretPolicy], now: datetime, result: ScanResult) -> None:
    for policy in policies.values():
        if policy.auto_revoke_replaced_after_days:
            result.auto_revoked += _auto_revoke_replaced(policy, now)
        if policy.auto_disable_dormant_after_days:
            result.auto_disabled += _auto_disable_dormant(policy, now)


def _auto_revoke_replaced(policy: SecretPolicy, now: datetime) -> int:
    """Revoke live secrets unused since a newer live secret replaced them N days ago."""
    days = policy.auto_revoke_replaced_after_days
    secrets = _live_secrets(now).filter(client__environment=policy.environment)
    revoked = 0
    for _client_pk, group in groupby(secrets, key=attrgetter("client_id")):
        group = list(group)
        for older, newer in zip(group, group[1:], strict=False):
            replaced_at = newer.created_at
            used_since = older.last_used_at is not None and older.last_used_at >= replaced_at
            if used_since or replaced_at > now - timedelta(days=days):
                continue
            with transaction.atomic():
                client_secret_revoke(actor=Actor.system(), secret=older, notify=False)
                _queue_auto_action(
                    older.client,
                    action="revoked a secret",
                    secret=older,
                    reason=f"it stayed unused for {days} days after it was replaced",
                )
            revoked += 1
    return revoked


def _auto_disable_dormant(policy: SecretPolicy, now: datetime) -> int:
    days = policy.auto_disable_dormant_after_days
    cutoff = now - timedelta(days=days)
    dormant = Q(last_used_at__lt=cutoff) | Q(last_used_at__isnull=True, created_at__lt=cutoff)
    candidates = Client.objects.active().filter(dormant, environment=policy.environment)
    disabled = 0
    for pk in candidates.values_list("pk", flat=True):
        with transaction.atomic():
            # Re-check under the row lock: a token may have arrived since the query.
            client = Client.objects.active().filter(dormant).select_for_update().filter(pk=pk)
            client = client.first()
            if client is None:
                continue
            client_set_status(actor=Actor.system(), client=client, status=Client.Status.DISABLED)
            _queue_auto_action(
                client,
                action="disabled the client",
                secret=None,
                reason=f"it had no successful token request for {days} days",
            )
        disabled += 1
    return disabled


def _queue_auto_action(
    client: Client, *, action: str, secret: ClientSecret | None, reason: str
) -> None:
    notification_queue(
        kind=NotificationLog.Kind.AUTO_ACTION,
        template="auto_action",
        context={"action": action, "secret": secret, "reason": reason},
        recipients=recipients_for(client),
        client=client,
    )
