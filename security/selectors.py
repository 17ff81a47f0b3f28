"""Reads of the secret lifecycle: open findings and failed notifications."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from .models import NotificationLog, SecretFinding


def open_findings(*, kind: str = "", environment: str = "") -> QuerySet[SecretFinding]:
    findings = SecretFinding.objects.open().select_related("client", "secret")
    if kind:
        findings = findings.filter(kind=kind)
    if environment:
        findings = findings.filter(client__environment=environment)
    return findings.order_by("-first_seen_at", "-id")


def open_finding_counts() -> dict[str, int]:
    """Open findings per kind (every kind present, zeros included), for the overview."""
    rows = (
        SecretFinding.objects.open().values("kind").annotate(n=Count("id")).values_list("kind", "n")
    )
    return {kind: 0 for kind in SecretFinding.Kind.values} | dict(rows)


def failed_notifications(*, limit: int = 50) -> QuerySet[NotificationLog]:
    return NotificationLog.objects.failed().select_related("client")[:limit]
