"""Writes of the alerts app: raising and closing alerts, their timeline, suppressions,
detection settings, one-click responses and notification destinations.

Like every service in Keyward: keyword-only arguments, one transaction, the audit row
inside it, side effects (notifications, cache drops) after commit. Responses call the
owning app's service (clients.services, security.services), which writes its own audit
row, and add a timeline entry to the alert in the same transaction.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import Actor, admin_action_record, fields_changed
from clients import services as client_services
from clients.models import Client, ClientSecret
from security import services as security_services

from .crypto import secret_encrypt, webhook_secret_generate
from .detections import DETECTIONS, Subject
from .models import (
    ENVIRONMENT_ANY,
    Alert,
    AlertDestination,
    AlertEvent,
    DetectionSetting,
    Severity,
    Suppression,
)
from .notifications import deliveries_on_open

logger = logging.getLogger(__name__)

OPEN_COUNT_CACHE_KEY = "keyward:alerts:open-count"
# A rotated webhook secret keeps signing beside the new one this long.
WEBHOOK_SECRET_OVERLAP = timedelta(hours=24)
MAX_SUPPRESSION = timedelta(days=90)


def _user_or_none(actor: Actor):
    user = actor.user
    return user if user is not None and user.is_authenticated else None


def _timeline(alert: Alert, *, actor: Actor, kind: str, text: str = "", **details) -> AlertEvent:
    return AlertEvent.objects.create(
        alert=alert,
        kind=kind,
        actor_label=actor.label,
        actor=_user_or_none(actor),
        text=text,
        details=details,
    )


def _open_count_changed() -> None:
    # Now (later reads in this transaction) and after commit (a reader in between may have
    # cached the old count).
    cache.delete(OPEN_COUNT_CACHE_KEY)
    transaction.on_commit(lambda: cache.delete(OPEN_COUNT_CACHE_KEY))


# --- Raising -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Raised:
    alert: Alert | None
    change: str  # opened, updated, unchanged, stale


def alert_raise(
    *,
    rule: str,
    subject: Subject,
    evidence: dict,
    seen_at: datetime,
    first_seen_at: datetime | None = None,
    severity: str | None = None,
    client: Client | None = None,
    now: datetime | None = None,
) -> Raised:
    """Create the active alert for (rule, subject), or update it with a repeat.

    1. An active alert exists: a newer `seen_at` bumps count, last seen and evidence; the
       same or an older one (a re-evaluation over the same events) changes nothing.
       Suppression is re-checked: one that lapsed turns the alert open again, a new one
       suppresses it.
    2. None is active: if the latest resolved alert for the subject was closed after
       `seen_at`, these are the events it already covered (stale). Otherwise a new alert
       opens, linked to that resolved one (`previous`) when there is one: a recurrence
       is a new alert, so every closed alert keeps its close reason and its timeline.
    3. The unique partial constraint settles a race between two evaluations: the loser
       retries once and updates the winner's alert.
    """
    now = now or timezone.now()
    detection = DETECTIONS[rule]
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                return _raise(
                    detection_severity=severity or detection.severity,
                    rule=rule,
                    subject=subject,
                    evidence=evidence,
                    seen_at=seen_at,
                    first_seen_at=first_seen_at or seen_at,
                    client=client,
                    now=now,
                )
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _raise(*, detection_severity, rule, subject, evidence, seen_at, first_seen_at, client, now):
    system = Actor.system()
    alert = (
        Alert.objects.active()
        .select_for_update()
        .filter(rule=rule, subject_key=subject.key)
        .first()
    )
    suppression = suppression_matching(
        rule=rule, client_id=subject.client_id, network=subject.network, now=now
    )
    if alert is not None:
        if seen_at <= alert.last_seen_at:
            return Raised(alert, "unchanged")
        alert.count += 1
        alert.last_seen_at = seen_at
        alert.evidence = evidence
        alert.updated_at = now
        _suppression_recheck(alert, suppression, system)
        alert.save()
        _open_count_changed()
        return Raised(alert, "updated")
    previous = (
        Alert.objects.filter(rule=rule, subject_key=subject.key, status=Alert.Status.RESOLVED)
        .order_by("-resolved_at", "-id")
        .first()
    )
    if previous is not None and previous.resolved_at and seen_at <= previous.resolved_at:
        return Raised(previous, "stale")
    alert = Alert.objects.create(
        rule=rule,
        severity=detection_severity,
        subject_key=subject.key,
        subject_client_id=subject.client_id,
        client=client,
        source_network=subject.network,
        environment=client.environment if client else "",
        status=Alert.Status.SUPPRESSED if suppression else Alert.Status.OPEN,
        first_seen_at=first_seen_at,
        last_seen_at=seen_at,
        evidence=evidence,
        previous=previous,
        created_at=now,
        updated_at=now,
    )
    if previous is not None:
        _timeline(
            alert,
            actor=system,
            kind=AlertEvent.Kind.REOPENED,
            text=f"Recurred after alert #{previous.pk} was resolved.",
            previous=previous.pk,
        )
    else:
        _timeline(alert, actor=system, kind=AlertEvent.Kind.OPENED)
    if suppression:
        _timeline(
            alert,
            actor=system,
            kind=AlertEvent.Kind.SUPPRESSED,
            text=f"Matched suppression #{suppression.pk}: {suppression.reason}",
        )
    else:
        deliveries_on_open(alert, now=now)
        # One line per new alert for whoever reads the logs (bin/dev's console, a log
        # shipper); the subject is a client_id or a network, nothing secret.
        transaction.on_commit(
            lambda: logger.warning(
                "alert #%s opened: %s (%s) on %s", alert.pk, rule, alert.severity, subject.key
            )
        )
    _open_count_changed()
    return Raised(alert, "opened")


def _suppression_recheck(alert: Alert, suppression: Suppression | None, actor: Actor) -> None:
    if alert.status == Alert.Status.SUPPRESSED and suppression is None:
        alert.status = Alert.Status.OPEN
        _timeline(
            alert,
            actor=actor,
            kind=AlertEvent.Kind.REOPENED,
            text="The suppression lapsed and the activity goes on.",
        )
    elif alert.status != Alert.Status.SUPPRESSED and suppression is not None:
        alert.status = Alert.Status.SUPPRESSED
        _timeline(
            alert,
            actor=actor,
            kind=AlertEvent.Kind.SUPPRESSED,
            text=f"Matched suppression #{suppression.pk}: {suppression.reason}",
        )


def alerts_auto_resolve(*, now: datetime | None = None) -> int:
    """Resolve active alerts whose last event is older than the quiet period.

    Claims rows with a conditional update per alert (status still active), so two runs at
    once resolve each alert once. Returns how many it resolved.
    """
    now = now or timezone.now()
    quiet = timedelta(seconds=settings.KEYWARD_ALERT_QUIET_SECONDS)
    candidates = (
        Alert.objects.active().filter(last_seen_at__lt=now - quiet).values_list("pk", flat=True)
    )
    resolved = 0
    for pk in list(candidates[:1000]):
        with transaction.atomic():
            claimed = Alert.objects.filter(pk=pk, status__in=Alert.ACTIVE_STATUSES).update(
                status=Alert.Status.RESOLVED,
                close_reason=Alert.CloseReason.AUTOMATIC,
                resolved_at=now,
                updated_at=now,
            )
            if not claimed:
                continue
            alert = Alert.objects.get(pk=pk)
            quiet_minutes = int(quiet.total_seconds() // 60)
            _timeline(
                alert,
                actor=Actor.system(),
                kind=AlertEvent.Kind.RESOLVED,
                text=f"Resolved automatically: no matching event for {quiet_minutes} minutes.",
                close_reason=Alert.CloseReason.AUTOMATIC,
            )
            admin_action_record(
                actor=Actor.system(),
                action="alert.resolve",
                target_type="alert",
                target_id=str(pk),
                target_label=alert.audit_label(),
                after={"status": "resolved", "close_reason": "automatic"},
            )
            resolved += 1
    if resolved:
        _open_count_changed()
    return resolved


# --- Triage ------------------------------------------------------------------------------


def _audit_alert(actor: Actor, alert: Alert, action: str, before=None, after=None) -> None:
    admin_action_record(
        actor=actor,
        action=action,
        target_type="alert",
        target_id=str(alert.pk),
        target_label=alert.audit_label(),
        before=before,
        after=after,
    )


def _locked(alert: Alert) -> Alert:
    return Alert.objects.select_for_update(of=("self",)).select_related("client").get(pk=alert.pk)


def alert_acknowledge(*, actor: Actor, alert: Alert, comment: str = "") -> Alert:
    """Open → acknowledged: someone is on it. Other statuses are left as they are."""
    with transaction.atomic():
        alert = _locked(alert)
        if alert.status != Alert.Status.OPEN:
            return alert
        alert.status = Alert.Status.ACKNOWLEDGED
        alert.updated_at = timezone.now()
        if alert.assignee is None and _user_or_none(actor):
            alert.assignee = actor.user
        alert.save()
        _timeline(alert, actor=actor, kind=AlertEvent.Kind.ACKNOWLEDGED, text=comment)
        _audit_alert(
            actor, alert, "alert.acknowledge", {"status": "open"}, {"status": alert.status}
        )
        _open_count_changed()
    return alert


def alert_resolve(*, actor: Actor, alert: Alert, close_reason: str, comment: str = "") -> Alert:
    if close_reason not in Alert.CloseReason.values:
        raise ValidationError({"close_reason": f"Unknown close reason {close_reason!r}."})
    with transaction.atomic():
        alert = _locked(alert)
        if not alert.is_active():
            return alert
        before = {"status": alert.status}
        now = timezone.now()
        alert.status = Alert.Status.RESOLVED
        alert.close_reason = close_reason
        alert.resolved_at = now
        alert.updated_at = now
        alert.save()
        _timeline(
            alert,
            actor=actor,
            kind=AlertEvent.Kind.RESOLVED,
            text=comment,
            close_reason=close_reason,
        )
        _audit_alert(
            actor,
            alert,
            "alert.resolve",
            before,
            {"status": "resolved", "close_reason": close_reason},
        )
        _open_count_changed()
    return alert


def alerts_bulk_update(
    *, actor: Actor, alerts: list[Alert], action: str, close_reason: str = ""
) -> int:
    """Acknowledge or resolve several alerts; each gets its own audit row and timeline line.
    Returns how many changed."""
    changed = 0
    with transaction.atomic():
        for alert in alerts:
            before = alert.status
            if action == "acknowledge":
                alert = alert_acknowledge(actor=actor, alert=alert)
            elif action == "resolve":
                alert = alert_resolve(actor=actor, alert=alert, close_reason=close_reason)
            else:
                raise ValidationError({"action": f"Unknown action {action!r}."})
            changed += alert.status != before
    return changed


def alert_assign(*, actor: Actor, alert: Alert, assignee) -> Alert:
    with transaction.atomic():
        alert = _locked(alert)
        before = alert.assignee.get_username() if alert.assignee else None
        after = assignee.get_username() if assignee else None
        if before == after:
            return alert
        alert.assignee = assignee
        alert.updated_at = timezone.now()
        alert.save()
        _timeline(
            alert,
            actor=actor,
            kind=AlertEvent.Kind.ASSIGNED,
            text=f"Assigned to {after}." if after else "Unassigned.",
        )
        _audit_alert(actor, alert, "alert.assign", {"assignee": before}, {"assignee": after})
    return alert


def alert_comment(*, actor: Actor, alert: Alert, text: str) -> AlertEvent:
    text = text.strip()
    if not text:
        raise ValidationError({"text": "Write a comment first."})
    if len(text) > 4000:
        raise ValidationError({"text": "A comment can be at most 4000 characters long."})
    with transaction.atomic():
        event = _timeline(alert, actor=actor, kind=AlertEvent.Kind.COMMENT, text=text)
        _audit_alert(actor, alert, "alert.comment", after={"comment": text[:500]})
    return event


# --- Suppression -------------------------------------------------------------------------


def _network_contains(network: str, subject_network: str) -> bool:
    if not network:
        return True
    if not subject_network:
        return False
    try:
        return ipaddress.ip_network(subject_network, strict=False).subnet_of(
            ipaddress.ip_network(network, strict=False)
        )
    except (ValueError, TypeError):
        return False


def suppression_matching(
    *, rule: str, client_id: str, network: str, now: datetime | None = None
) -> Suppression | None:
    """The first suppression in force that covers this rule, client and network."""
    candidates = Suppression.objects.in_force(now).filter(
        Q(rule="") | Q(rule=rule), Q(client_id="") | Q(client_id=client_id)
    )
    for suppression in candidates:
        if _network_contains(suppression.network, network):
            return suppression
    return None


def suppression_create(
    *,
    actor: Actor,
    reason: str,
    expires_at: datetime,
    rule: str = "",
    client_id: str = "",
    network: str = "",
) -> Suppression:
    """Suppress matching alerts until `expires_at`; active ones turn suppressed now."""
    now = timezone.now()
    if not (rule or client_id or network):
        raise ValidationError("Name a rule, a client or a network to suppress.")
    if rule and rule not in DETECTIONS:
        raise ValidationError({"rule": f"Unknown rule {rule!r}."})
    if expires_at <= now or expires_at > now + MAX_SUPPRESSION:
        raise ValidationError({"expires_at": "A suppression lasts from a minute to 90 days."})
    if network:
        network = str(ipaddress.ip_network(network.strip(), strict=False))
    suppression = Suppression(
        rule=rule,
        client_id=client_id,
        network=network,
        reason=reason.strip(),
        expires_at=expires_at,
        created_by=_user_or_none(actor),
    )
    suppression.full_clean()
    with transaction.atomic():
        suppression.save()
        admin_action_record(
            actor=actor,
            action="suppression.create",
            target_type="suppression",
            target_id=str(suppression.pk),
            target_label=str(suppression),
            after=suppression.audit_fields(),
        )
        matching = Alert.objects.select_for_update().filter(
            status__in=[Alert.Status.OPEN, Alert.Status.ACKNOWLEDGED]
        )
        if rule:
            matching = matching.filter(rule=rule)
        if client_id:
            matching = matching.filter(subject_client_id=client_id)
        for alert in matching:
            if not _network_contains(network, alert.source_network):
                continue
            alert.status = Alert.Status.SUPPRESSED
            alert.updated_at = now
            alert.save(update_fields=["status", "updated_at"])
            _timeline(
                alert,
                actor=actor,
                kind=AlertEvent.Kind.SUPPRESSED,
                text=f"Suppressed until {expires_at:%Y-%m-%d %H:%M} UTC: {suppression.reason}",
                suppression=suppression.pk,
            )
        _open_count_changed()
    return suppression


def suppression_lift(*, actor: Actor, suppression: Suppression) -> Suppression:
    """End a suppression now. Alerts it covered turn open at their next matching event."""
    with transaction.atomic():
        suppression = Suppression.objects.select_for_update().get(pk=suppression.pk)
        if suppression.lifted_at is not None:
            return suppression
        suppression.lifted_at = timezone.now()
        suppression.save(update_fields=["lifted_at"])
        admin_action_record(
            actor=actor,
            action="suppression.lift",
            target_type="suppression",
            target_id=str(suppression.pk),
            target_label=str(suppression),
            before=suppression.audit_fields(),
        )
    return suppression


def alert_suppress(
    *, actor: Actor, alert: Alert, by: str, duration: timedelta, reason: str
) -> Suppression:
    """Suppress this alert's rule for its client or network (`by`: client, network, rule)."""
    fields = {"rule": alert.rule}
    if by == "client":
        if not alert.subject_client_id:
            raise ValidationError("This alert names no client.")
        fields["client_id"] = alert.subject_client_id
    elif by == "network":
        if not alert.source_network:
            raise ValidationError("This alert names no network.")
        fields["network"] = alert.source_network
    elif by != "rule":
        raise ValidationError({"by": "Suppress by client, network or rule."})
    return suppression_create(
        actor=actor, reason=reason, expires_at=timezone.now() + duration, **fields
    )


# --- Responses ---------------------------------------------------------------------------


def _response(alert: Alert, actor: Actor, text: str, **details) -> None:
    _timeline(alert, actor=actor, kind=AlertEvent.Kind.RESPONSE, text=text, **details)
    alert.updated_at = timezone.now()
    alert.save(update_fields=["updated_at"])


def alert_respond_disable_client(*, actor: Actor, alert: Alert) -> Client:
    client = _require_client(alert)
    with transaction.atomic():
        client_services.client_set_status(actor=actor, client=client, status=Client.Status.DISABLED)
        _response(alert, actor, f"Disabled client {client.name}.", action="client.disable")
    return client


def alert_respond_revoke_secret(*, actor: Actor, alert: Alert, secret: ClientSecret) -> None:
    client = _require_client(alert)
    if secret.client_id != client.pk:
        raise ValidationError("That secret belongs to another client.")
    with transaction.atomic():
        security_services.client_secret_revoke(actor=actor, secret=secret)
        _response(
            alert,
            actor,
            f"Revoked secret {secret.hint} of {client.name}.",
            action="secret.revoke",
            secret_id=secret.pk,
        )


def alert_respond_rotate_secret(
    *, actor: Actor, alert: Alert, grace: timedelta
) -> tuple[ClientSecret, str]:
    client = _require_client(alert)
    with transaction.atomic():
        secret, plain = security_services.client_secret_rotate(
            actor=actor, client=client, grace=grace
        )
        hours = grace.total_seconds() / 3600
        _response(
            alert,
            actor,
            f"Rotated the secret of {client.name}; old secrets stay valid {hours:g} h.",
            action="secret.rotate",
            secret_id=secret.pk,
        )
    return secret, plain


def alert_respond_block_network(*, actor: Actor, alert: Alert, network: str = "") -> Client:
    """Add the alert's network (or `network`) to the client's blocked networks."""
    client = _require_client(alert)
    network = network or alert.source_network
    if not network:
        raise ValidationError("This alert names no network to block.")
    network = str(ipaddress.ip_network(network.strip(), strict=False))
    with transaction.atomic():
        client = Client.objects.select_for_update().get(pk=client.pk)
        if network not in client.denied_networks:
            client_services.client_update(
                actor=actor, client=client, denied_networks=[*client.denied_networks, network]
            )
        _response(
            alert,
            actor,
            f"Blocked {network} for {client.name}.",
            action="client.block_network",
            network=network,
        )
    return client


def _require_client(alert: Alert) -> Client:
    if alert.client is None:
        raise ValidationError("This alert is about no registered client.")
    return alert.client


# --- Detection settings ------------------------------------------------------------------

SETTING_FIELDS = ("enabled", "threshold", "window_seconds", "minimum", "severity")


def detection_setting_update(
    *, actor: Actor, rule: str, environment: str, **fields
) -> DetectionSetting:
    """Set one rule's threshold, window, minimum, severity and switch for an environment."""
    detection = DETECTIONS.get(rule)
    if detection is None:
        raise ValidationError({"rule": f"Unknown rule {rule!r}."})
    if set(fields) - set(SETTING_FIELDS):
        raise ValueError(f"Not editable: {', '.join(sorted(set(fields) - set(SETTING_FIELDS)))}")
    if environment not in [ENVIRONMENT_ANY, *Client.Environment.values]:
        raise ValidationError({"environment": f"Unknown environment {environment!r}."})
    if "severity" in fields and fields["severity"] not in Severity.values:
        raise ValidationError({"severity": "Unknown severity."})
    defaults = detection.defaults()
    with transaction.atomic():
        row, _ = DetectionSetting.objects.select_for_update().get_or_create(
            rule=rule,
            environment=environment,
            defaults={name: getattr(defaults, name) for name in SETTING_FIELDS},
        )
        before = row.audit_fields()
        for name, value in fields.items():
            setattr(row, name, value)
        row.full_clean()
        before, after = fields_changed(before, row.audit_fields())
        row.updated_by = _user_or_none(actor)
        row.save()
        if after:
            admin_action_record(
                actor=actor,
                action="detection.update",
                target_type="detection",
                target_id=f"{rule}:{environment or 'all'}",
                target_label=f"{detection.title} ({environment or 'all environments'})",
                before=before,
                after=after,
            )
    return row


# --- Destinations ------------------------------------------------------------------------


def _validate_target(kind: str, target: str) -> str:
    from django.core.validators import URLValidator, validate_email

    target = target.strip()
    if kind == AlertDestination.Kind.WEBHOOK:
        URLValidator(schemes=["https", "http"])(target)
        return target
    addresses = [a.strip() for a in target.split(",") if a.strip()]
    if not addresses:
        raise ValidationError({"target": "Give at least one email address."})
    for address in addresses:
        validate_email(address)
    return ", ".join(addresses)


def destination_create(
    *,
    actor: Actor,
    name: str,
    kind: str,
    target: str,
    min_severity: str = Severity.HIGH,
    environments: list[str] | None = None,
) -> tuple[AlertDestination, str | None]:
    """Returns the destination and, for a webhook, its signing secret (shown once)."""
    if kind not in AlertDestination.Kind.values:
        raise ValidationError({"kind": "Choose email or webhook."})
    environments = list(environments or [])
    if set(environments) - set(Client.Environment.values):
        raise ValidationError({"environments": "Unknown environment."})
    plain = webhook_secret_generate() if kind == AlertDestination.Kind.WEBHOOK else None
    destination = AlertDestination(
        name=name.strip(),
        kind=kind,
        target=_validate_target(kind, target),
        min_severity=min_severity,
        environments=environments,
        secret_encrypted=secret_encrypt(plain) if plain else "",
        created_by=_user_or_none(actor),
    )
    destination.full_clean()
    with transaction.atomic():
        destination.save()
        admin_action_record(
            actor=actor,
            action="alert_destination.create",
            target_type="alert_destination",
            target_id=str(destination.pk),
            target_label=destination.name,
            after=destination.audit_fields() | {"secret": "generated" if plain else None},
        )
    return destination, plain


def destination_secret_rotate(*, actor: Actor, destination: AlertDestination) -> str:
    """A new signing secret; the old one signs beside it for WEBHOOK_SECRET_OVERLAP."""
    if destination.kind != AlertDestination.Kind.WEBHOOK:
        raise ValidationError("Only webhooks have a signing secret.")
    plain = webhook_secret_generate()
    with transaction.atomic():
        destination = AlertDestination.objects.select_for_update().get(pk=destination.pk)
        destination.previous_secret_encrypted = destination.secret_encrypted
        destination.previous_secret_until = timezone.now() + WEBHOOK_SECRET_OVERLAP
        destination.secret_encrypted = secret_encrypt(plain)
        destination.save()
        admin_action_record(
            actor=actor,
            action="alert_destination.rotate_secret",
            target_type="alert_destination",
            target_id=str(destination.pk),
            target_label=destination.name,
            after={"previous_secret_until": destination.previous_secret_until.isoformat()},
        )
    return plain


def destination_delete(*, actor: Actor, destination: AlertDestination) -> None:
    with transaction.atomic():
        before = destination.audit_fields()
        pk = destination.pk
        destination.delete()
        admin_action_record(
            actor=actor,
            action="alert_destination.delete",
            target_type="alert_destination",
            target_id=str(pk),
            target_label=before["name"],
            before=before,
        )
