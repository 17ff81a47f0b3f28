"""Reads of the alerts app: the inbox query, the open count, an alert's surroundings."""

from __future__ import annotations

from datetime import datetime

from django.core.cache import cache
from django.db.models import QuerySet

from analytics.models import TokenEvent

from .models import Alert, AlertDelivery, AlertDestination, Suppression
from .services import OPEN_COUNT_CACHE_KEY

OPEN_COUNT_SECONDS = 10


def alerts_open_count() -> int:
    """Open alerts (not acknowledged, not suppressed), for the navigation. One count on
    the partial index alert_active_recent, shared through the cache for a few seconds and
    dropped whenever an alert changes status."""
    count = cache.get(OPEN_COUNT_CACHE_KEY)
    if count is None:
        count = Alert.objects.filter(status=Alert.Status.OPEN).count()
        cache.set(OPEN_COUNT_CACHE_KEY, count, OPEN_COUNT_SECONDS)
    return count


def alerts_filtered(
    *,
    severity: str = "",
    status: str = "",
    rule: str = "",
    client_id: str = "",
    environment: str = "",
    assignee: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Alert]:
    """The inbox. `status` "" means active (open, acknowledged, suppressed); "all" means
    every status; `assignee` is a username, "me" is resolved by the view, "none" unassigned."""
    alerts = Alert.objects.select_related("client", "assignee")
    if status == "all":
        pass
    elif status:
        alerts = alerts.filter(status=status)
    else:
        alerts = alerts.active()
    if severity:
        alerts = alerts.filter(severity=severity)
    if rule:
        alerts = alerts.filter(rule=rule)
    if client_id:
        alerts = alerts.filter(subject_client_id=client_id)
    if environment:
        alerts = alerts.filter(environment=environment)
    if assignee == "none":
        alerts = alerts.filter(assignee__isnull=True)
    elif assignee:
        alerts = alerts.filter(assignee__username=assignee)
    if since:
        alerts = alerts.filter(last_seen_at__gte=since)
    if until:
        alerts = alerts.filter(first_seen_at__lte=until)
    return alerts.order_by("-last_seen_at", "-id")


def alert_sample_events(alert: Alert) -> list[TokenEvent]:
    ids = alert.evidence.get("sample_event_ids") or []
    return list(TokenEvent.objects.filter(id__in=ids).order_by("-occurred_at"))


def suppressions_listed(*, limit: int = 200) -> QuerySet[Suppression]:
    return Suppression.objects.select_related("created_by")[:limit]


def destination_deliveries(destination: AlertDestination, *, limit: int = 50):
    return AlertDelivery.objects.filter(destination=destination).select_related("alert")[:limit]
