"""Alert notifications: routing, grouping and throttling, signed webhooks, email.

1. A new alert (not suppressed) queues one `opened` delivery per destination that routes
   it (severity at least the destination's minimum, environment in its list), in the
   transaction that opened it — unless that destination heard about the same rule less
   than THROTTLE ago: then it is folded into the next update.
2. `notifications_plan` (after every evaluation) sends one `update` per destination and
   rule whose alerts changed since that stream's last delivery, at most once per THROTTLE.
   A storm of a thousand alerts is one message, then an update every few minutes.
3. A retrying Celery task sends each delivery; the row keeps attempts, the answer and the
   last error, so the destination's page shows its log.

Webhooks are signed as Stripe signs its own: `Keyward-Signature: t=<unix>,v1=<hex
HMAC-SHA256(secret, "<t>.<body>")>`, one v1 per valid secret while a rotation overlaps.
docs/alerts.md shows how receivers verify it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from smtplib import SMTPException

import orjson
from celery import signature
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from .crypto import secret_decrypt
from .detections import detection_get
from .models import Alert, AlertDelivery, AlertDestination, AlertEvent

log = logging.getLogger("keyward.alerts")

SEND_TASK = "alerts.tasks.send_alert_delivery"
SIGNATURE_HEADER = "Keyward-Signature"
WEBHOOK_TIMEOUT_SECONDS = 10
# Alerts shown by name in one update; the rest are counted.
UPDATE_LISTED = 20


class WebhookRefused(Exception):
    """The receiver answered, but not with 2xx."""

    def __init__(self, status: int, body: str = ""):
        super().__init__(f"HTTP {status}: {body[:200]}")
        self.status = status


class WebhookRetryable(WebhookRefused):
    """5xx, 408 or 429: worth another try."""


# Errors worth another try: the network, the mail server, a receiver that is down.
RETRYABLE_ERRORS = (WebhookRetryable, urllib.error.URLError, OSError, SMTPException)


def throttle() -> timedelta:
    return timedelta(seconds=settings.KEYWARD_ALERT_THROTTLE_SECONDS)


# --- Payloads ----------------------------------------------------------------------------


def alert_url(alert: Alert) -> str:
    return settings.KEYWARD_ISSUER + reverse("alerts:detail", args=[alert.pk])


def alert_summary(alert: Alert) -> dict:
    detection = detection_get(alert.rule)
    return {
        "id": alert.pk,
        "rule": alert.rule,
        "title": detection.title if detection else alert.rule,
        "severity": alert.severity,
        "status": alert.status,
        "client_id": alert.subject_client_id,
        "source_network": alert.source_network,
        "environment": alert.environment,
        "first_seen_at": alert.first_seen_at.isoformat(),
        "last_seen_at": alert.last_seen_at.isoformat(),
        "count": alert.count,
        "explanation": detection.explain(alert.evidence) if detection else "",
        "evidence": alert.evidence,
        "url": alert_url(alert),
    }


def opened_payload(alert: Alert) -> dict:
    summary = alert_summary(alert)
    text = (
        f"[{alert.severity.upper()}] {summary['title']}: {alert.subject_label()} "
        f"({alert.environment or 'unknown environment'}). {summary['explanation']} "
        f"{summary['url']}"
    )
    return {"type": "alert.opened", "text": text, "alert": summary, "alert_ids": [alert.pk]}


def update_payload(
    *, rule: str, alerts: list[Alert], since: datetime | None, told: frozenset = frozenset()
) -> dict:
    """`told`: ids the previous message already named (they are not new)."""
    detection = detection_get(rule)
    title = detection.title if detection else rule
    new = [a for a in alerts if a.pk not in told and (since is None or a.created_at >= since)]
    active = [a for a in alerts if a.is_active()]
    text = (
        f"{title}: {len(new)} new, {len(active)} active, "
        f"{len(alerts) - len(active)} resolved since the last message. "
        + "; ".join(f"{a.subject_label()} ({a.status}, ×{a.count})" for a in alerts[:5])
    )
    return {
        "type": "alerts.update",
        "text": text,
        "rule": rule,
        "new": len(new),
        "active": len(active),
        "changed": len(alerts),
        "alerts": [alert_summary(a) for a in alerts[:UPDATE_LISTED]],
        "alert_ids": [a.pk for a in alerts],
    }


# --- Queueing ----------------------------------------------------------------------------


def _last_delivery(destination: AlertDestination, rule: str) -> AlertDelivery | None:
    return destination.deliveries.filter(rule=rule).order_by("-created_at", "-id").first()


def _queue(
    *, destination: AlertDestination, rule: str, kind: str, payload: dict, now, alert=None
) -> AlertDelivery:
    # created_at is the evaluation's `now`, the clock alerts' updated_at is on too.
    delivery = AlertDelivery.objects.create(
        destination=destination, alert=alert, rule=rule, kind=kind, payload=payload, created_at=now
    )
    # robust: a broker outage leaves a pending row (visible), never fails the evaluation.
    transaction.on_commit(lambda: _enqueue(delivery.pk), robust=True)
    return delivery


def _enqueue(delivery_id: int) -> None:
    # By name: tasks.py imports this module.
    signature(SEND_TASK, args=(delivery_id,)).delay()


def deliveries_on_open(alert: Alert, *, now: datetime) -> list[AlertDelivery]:
    """Queue the `opened` message of a new alert. Call inside the transaction opening it."""
    queued = []
    for destination in AlertDestination.objects.filter(enabled=True):
        if not destination.routes(severity=alert.severity, environment=alert.environment):
            continue
        last = _last_delivery(destination, alert.rule)
        if last is not None and last.created_at > now - throttle():
            continue  # a storm: the next update carries it
        queued.append(
            _queue(
                destination=destination,
                rule=alert.rule,
                kind=AlertDelivery.Kind.OPENED,
                payload=opened_payload(alert),
                alert=alert,
                now=now,
            )
        )
    return queued


def notifications_plan(*, now: datetime | None = None) -> int:
    """One update per destination and rule whose alerts changed since its last message.

    Only streams that already sent something (an `opened` message) get updates, and at
    most one per THROTTLE. Returns the number of updates queued.
    """
    now = now or timezone.now()
    cutoff = now - throttle()
    queued = 0
    for destination in AlertDestination.objects.filter(enabled=True):
        for rule in destination.deliveries.values_list("rule", flat=True).distinct().order_by():
            last = _last_delivery(destination, rule)
            if last.created_at > cutoff:
                continue
            alerts = _changed_since(destination, rule, last)
            if not alerts:
                continue
            with transaction.atomic():
                _queue(
                    destination=destination,
                    rule=rule,
                    kind=AlertDelivery.Kind.UPDATE,
                    payload=update_payload(
                        rule=rule,
                        alerts=alerts,
                        since=last.created_at,
                        told=frozenset(last.payload.get("alert_ids", [])),
                    ),
                    now=now,
                )
            queued += 1
    return queued


def _changed_since(destination: AlertDestination, rule: str, last: AlertDelivery) -> list[Alert]:
    """Alerts of `rule` this destination routes that changed since `last` told about them.

    Alerts raised in the same evaluation as `last` share its timestamp, so the test is
    "changed at or after it, and not already in it unchanged".
    """
    told = set(last.payload.get("alert_ids", []))
    candidates = (
        Alert.objects.filter(rule=rule, updated_at__gte=last.created_at)
        .exclude(status=Alert.Status.SUPPRESSED)
        .select_related("client")
        .order_by("-last_seen_at")
    )
    return [
        alert
        for alert in candidates
        if not (alert.pk in told and alert.updated_at <= last.created_at)
        and destination.routes(severity=alert.severity, environment=alert.environment)
    ]


# --- Sending -----------------------------------------------------------------------------


def signature_header(*, secrets: list[str], body: bytes, timestamp: int) -> str:
    """`t=<unix>,v1=<hex>[,v1=<hex>…]`: HMAC-SHA256 of "<t>.<body>" with each secret."""
    signed = f"{timestamp}.".encode() + body
    macs = [hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in secrets]
    return ",".join([f"t={timestamp}", *(f"v1={mac}" for mac in macs)])


def signing_secrets(destination: AlertDestination, now: datetime | None = None) -> list[str]:
    now = now or timezone.now()
    secrets = [secret_decrypt(destination.secret_encrypted)]
    if destination.previous_secret_encrypted and (
        destination.previous_secret_until and destination.previous_secret_until > now
    ):
        secrets.append(secret_decrypt(destination.previous_secret_encrypted))
    return secrets


def webhook_post(destination: AlertDestination, payload: dict) -> int:
    """POST the JSON body, signed; returns the status or raises WebhookRefused.

    urllib from the standard library: one POST with a timeout needs no HTTP client
    dependency.
    """
    body = orjson.dumps(payload)
    header = signature_header(
        secrets=signing_secrets(destination), body=body, timestamp=int(time.time())
    )
    request = urllib.request.Request(  # noqa: S310 - the URL was validated as http(s)
        destination.target,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Keyward-Alerts/1",
            SIGNATURE_HEADER: header,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        text = exc.read().decode("utf-8", "replace")
        retryable = exc.code >= 500 or exc.code in (408, 429)
        raise (WebhookRetryable if retryable else WebhookRefused)(exc.code, text) from None


def email_send(destination: AlertDestination, payload: dict) -> None:
    recipients = [a.strip() for a in destination.target.split(",") if a.strip()]
    if payload["type"] == "alert.opened":
        alert = payload["alert"]
        subject = f"[Keyward] {alert['severity']}: {alert['title']}"
    else:
        subject = f"[Keyward] update: {payload['changed']} alert(s) changed"
    send_mail(subject, payload["text"], settings.DEFAULT_FROM_EMAIL, recipients)


def delivery_send(delivery_id: int, *, final_attempt: bool = True) -> bool:
    """Send one delivery. Returns False when it was already sent.

    1. Count the attempt (committed, so a worker dying mid-send still shows it).
    2. POST the webhook or send the email.
    3. Record the answer; on an error record it and re-raise for the task's retry. The row
       turns `failed` on the last attempt or on an error not worth retrying.
    """
    with transaction.atomic():
        delivery = (
            AlertDelivery.objects.select_for_update()
            .select_related("destination")
            .get(pk=delivery_id)
        )
        if delivery.status == AlertDelivery.Status.SENT:
            return False
        delivery.attempts += 1
        delivery.save(update_fields=["attempts"])
    destination = delivery.destination
    status_code = None
    try:
        if destination.kind == AlertDestination.Kind.WEBHOOK:
            status_code = webhook_post(destination, delivery.payload)
        else:
            email_send(destination, delivery.payload)
    except Exception as exc:
        final = final_attempt or not isinstance(exc, RETRYABLE_ERRORS)
        AlertDelivery.objects.filter(pk=delivery_id).update(
            status=AlertDelivery.Status.FAILED if final else AlertDelivery.Status.PENDING,
            response_code=getattr(exc, "status", None),
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        log.warning("alert delivery %s attempt %s failed: %s", delivery_id, delivery.attempts, exc)
        raise
    with transaction.atomic():
        AlertDelivery.objects.filter(pk=delivery_id).update(
            status=AlertDelivery.Status.SENT,
            sent_at=timezone.now(),
            response_code=status_code,
            last_error="",
        )
        if delivery.alert_id is not None:
            AlertEvent.objects.create(
                alert_id=delivery.alert_id,
                kind=AlertEvent.Kind.NOTIFIED,
                actor_label="system",
                text=f"Sent to {destination.name} ({destination.get_kind_display().lower()}).",
                details={"delivery": delivery.pk},
            )
    return True


# Rows per DELETE: each batch its own short transaction, so pruning never holds locks the
# evaluation's inserts would wait for.
DELIVERY_PRUNE_BATCH = 1000


def deliveries_prune(*, now: datetime | None = None, batch: int = DELIVERY_PRUNE_BATCH) -> int:
    """Delete deliveries created more than KEYWARD_ALERT_DELIVERY_RETENTION_DAYS ago, oldest
    first, `batch` rows per transaction (the delivery_created index); returns how many.

    A delivery that old is long settled (retries give up within the hour), and the
    grouping of notifications only reads a destination's latest delivery per rule."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.KEYWARD_ALERT_DELIVERY_RETENTION_DAYS)
    deleted = 0
    while True:
        ids = list(
            AlertDelivery.objects.filter(created_at__lt=cutoff)
            .order_by("created_at")
            .values_list("id", flat=True)[:batch]
        )
        if not ids:
            break
        with transaction.atomic():
            deleted += AlertDelivery.objects.filter(id__in=ids).delete()[0]
    if deleted:
        log.info("alert deliveries: %d older than %s deleted", deleted, cutoff.isoformat())
    return deleted
