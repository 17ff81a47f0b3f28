"""Reads for the charts and dashboards, all from rollups: their cost follows the number of
buckets and keys in the range, not the number of raw events.

Which rollup: ranges up to MINUTE_RANGE (48 h) read the per-minute table and are exact to
the minute; longer ones read the per-hour table, with start and end floored to the hour.
`traffic_series` chooses by its step instead (under an hour: minutes). Per-minute rollups
are kept as long as raw events (KEYWARD_EVENT_RETENTION_DAYS), hourly ones for
KEYWARD_ROLLUP_RETENTION_DAYS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Max, Q, QuerySet, Sum

from audit.events import Outcome, Reason

from .models import (
    NetworkFailureHour,
    ScopeUsageHour,
    SourceNetwork,
    TrafficHour,
    TrafficMinute,
)

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
MINUTE_RANGE = timedelta(hours=48)

_SUCCESSES = Sum("count", filter=Q(outcome=Outcome.SUCCESS), default=0)
_FAILURES = Sum("count", filter=Q(outcome=Outcome.FAILURE), default=0)


@dataclass(frozen=True)
class SeriesPoint:
    bucket: datetime  # start of the step
    successes: int
    failures: int


@dataclass(frozen=True)
class ClientTraffic:
    client_id: str
    requests: int
    failures: int


@dataclass(frozen=True)
class FailingNetwork:
    network: str  # "203.0.113.0/24", "2001:db8:1::/48"
    source: str
    failures: int


@dataclass(frozen=True)
class UnknownClient:
    client_id: str
    source: str
    attempts: int
    last_seen: datetime  # start of the last minute or hour it was tried in


@dataclass(frozen=True)
class ScopeUse:
    scope: str
    requested: int
    issued: int


def _floor(moment: datetime, unit: timedelta) -> datetime:
    seconds = unit.total_seconds()
    return datetime.fromtimestamp(moment.timestamp() // seconds * seconds, tz=moment.tzinfo)


def _traffic(start: datetime, end: datetime, **filters) -> QuerySet:
    """The traffic rollup rows in [start, end), optional filters with None meaning any."""
    unit, model = (MINUTE, TrafficMinute) if end - start <= MINUTE_RANGE else (HOUR, TrafficHour)
    wanted = {name: value for name, value in filters.items() if value is not None}
    return model.objects.filter(
        bucket__gte=_floor(start, unit), bucket__lt=_floor(end, unit), **wanted
    )


def traffic_series(
    *,
    start: datetime,
    end: datetime,
    step: timedelta,
    client_id: str | None = None,
    source: str | None = None,
    reasons: list[str] | None = None,
) -> list[SeriesPoint]:
    """Successes and failures per step from `start` to `end`, zeros included: one point per
    step, the first at `start` floored to the rollup's unit. A step under an hour reads the
    per-minute rollup (a step under a minute counts as a minute), else the hourly one.
    `reasons`: only requests with one of these reason codes."""
    unit, model = (MINUTE, TrafficMinute) if step < HOUR else (HOUR, TrafficHour)
    step = max(step, unit)
    first = _floor(start, unit)
    wanted = {k: v for k, v in {"client_id": client_id, "source": source}.items() if v is not None}
    if reasons is not None:
        wanted["reason__in"] = reasons
    rows = (
        model.objects.filter(bucket__gte=first, bucket__lt=end, **wanted)
        .values("bucket")
        .annotate(successes=_SUCCESSES, failures=_FAILURES)
        .order_by()
    )
    points = max(0, -(-(end - first) // step))
    series = [[0, 0] for _ in range(points)]
    for row in rows:
        counts = series[(row["bucket"] - first) // step]
        counts[0] += row["successes"]
        counts[1] += row["failures"]
    return [SeriesPoint(first + i * step, s, f) for i, (s, f) in enumerate(series)]


def failure_reasons(
    *,
    start: datetime,
    end: datetime,
    client_id: str | None = None,
    source: str | None = None,
) -> list[tuple[str, int]]:
    """(reason, failures), most first."""
    rows = (
        _traffic(start, end, client_id=client_id, source=source, outcome=Outcome.FAILURE)
        .values("reason")
        .annotate(n=Sum("count"))
        .order_by("-n", "reason")
    )
    return [(row["reason"], row["n"]) for row in rows]


def top_clients(
    *,
    start: datetime,
    end: datetime,
    by: str = "requests",
    limit: int = 10,
    source: str | None = None,
) -> list[ClientTraffic]:
    """The clients with the most requests (`by="requests"`) or failures (`by="failures"`),
    by client_id as presented (unknown ones included)."""
    if by not in ("requests", "failures"):
        raise ValueError(f"by must be requests or failures, not {by!r}")
    rows = (
        _traffic(start, end, source=source)
        .values("client_id")
        .annotate(requests=Sum("count"), failures=_FAILURES)
        .filter(**({"failures__gt": 0} if by == "failures" else {}))
        .order_by(f"-{by}", "client_id")[:limit]
    )
    return [ClientTraffic(r["client_id"], r["requests"], r["failures"]) for r in rows]


def top_failing_networks(
    *, start: datetime, end: datetime, limit: int = 10, source: str | None = None
) -> list[FailingNetwork]:
    """Source networks (/24, /48) with the most failed requests; hourly, so start and end
    are floored to the hour."""
    rows = NetworkFailureHour.objects.filter(
        bucket__gte=_floor(start, HOUR), bucket__lt=_floor(end, HOUR)
    )
    if source is not None:
        rows = rows.filter(source=source)
    rows = rows.values("network", "source").annotate(n=Sum("count")).order_by("-n", "network")
    return [FailingNetwork(r["network"], r["source"], r["n"]) for r in rows[:limit]]


def network_failure_series(
    *, network: str, start: datetime, end: datetime, step: timedelta
) -> list[SeriesPoint]:
    """Failed requests from `network` (a /24 or /48, as the rollup keys it) per step of
    whole hours from `start` to `end`, zeros included, every source together."""
    step = max(step, HOUR)
    first = _floor(start, HOUR)
    rows = (
        NetworkFailureHour.objects.filter(network=network, bucket__gte=first, bucket__lt=end)
        .values("bucket")
        .annotate(n=Sum("count"))
        .order_by()
    )
    failures = [0] * max(0, -(-(end - first) // step))
    for row in rows:
        failures[(row["bucket"] - first) // step] += row["n"]
    return [SeriesPoint(first + i * step, 0, n) for i, n in enumerate(failures)]


def unknown_client_ids(
    *, start: datetime, end: datetime, limit: int = 10, source: str | None = None
) -> list[UnknownClient]:
    """client_ids that were tried but name no client, most attempts first."""
    rows = (
        _traffic(start, end, source=source, reason=Reason.UNKNOWN_CLIENT)
        .values("client_id", "source")
        .annotate(n=Sum("count"), last=Max("bucket"))
        .order_by("-n", "client_id")[:limit]
    )
    return [UnknownClient(r["client_id"], r["source"], r["n"], r["last"]) for r in rows]


def client_networks(*, client_id: str, limit: int = 50) -> list[SourceNetwork]:
    """The networks `client_id` was used from (any source), most recently seen first."""
    return list(SourceNetwork.objects.filter(client_id=client_id).order_by("-last_seen")[:limit])


def client_scope_usage(
    *, client_id: str, start: datetime, end: datetime, source: str | None = None
) -> list[ScopeUse]:
    """Per scope: how often `client_id` requested it and got it issued in [start, end)
    (hourly, floored to the hour). Compare with the client's grants for the scope review."""
    rows = ScopeUsageHour.objects.filter(
        client_id=client_id, bucket__gte=_floor(start, HOUR), bucket__lt=_floor(end, HOUR)
    )
    if source is not None:
        rows = rows.filter(source=source)
    rows = (
        rows.values("scope")
        .annotate(requested=Sum("requested"), issued=Sum("issued"))
        .order_by("scope")
    )
    return [ScopeUse(r["scope"], r["requested"], r["issued"]) for r in rows]


@dataclass(frozen=True)
class SourceTraffic:
    source: str
    requests: int
    failures: int


def traffic_by_source(
    *, start: datetime, end: datetime, client_id: str | None = None
) -> list[SourceTraffic]:
    """Requests and failures per source (keyward, keycloak, …), most requests first."""
    rows = (
        _traffic(start, end, client_id=client_id)
        .values("source")
        .annotate(requests=Sum("count"), failures=_FAILURES)
        .order_by("-requests", "source")
    )
    return [SourceTraffic(r["source"], r["requests"], r["failures"]) for r in rows]


def traffic_breakdown(
    *, start: datetime, end: datetime, source: str | None = None
) -> list[tuple[str, str, str, int]]:
    """(source, outcome, reason, requests) in [start, end): per-source totals and failure
    reasons from one read of the rollup (the overview needs both)."""
    rows = (
        _traffic(start, end, source=source)
        .values_list("source", "outcome", "reason")
        .annotate(n=Sum("count"))
        .order_by()
    )
    return list(rows)


def client_totals(
    *, start: datetime, end: datetime, source: str | None = None
) -> list[ClientTraffic]:
    """Requests and failures of every client_id in [start, end), in no order: one read of
    the rollup for both top lists (top_clients reads it once per list)."""
    rows = (
        _traffic(start, end, source=source)
        .values("client_id")
        .annotate(requests=Sum("count"), failures=_FAILURES)
        .order_by()
    )
    return [ClientTraffic(r["client_id"], r["requests"], r["failures"]) for r in rows]
