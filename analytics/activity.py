"""What the overview's traffic section and a client's activity block show, composed from
the rollup selectors: nothing here reads raw events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.cache import cache
from django.utils import timezone

from audit.events import Outcome
from clients.models import Client

from . import selectors
from .charts import (
    DEFAULT_POINTS,
    KNOWN_SOURCES,
    RANGES,
    Series,
    TableRow,
    Window,
    chart_url,
    series_read,
    table_rows,
    window_for,
)

SCOPE_WINDOW = timedelta(days=30)
TOP = 10
# The overview's numbers are the same for every console user and its tables refresh every
# 30 s, so they are computed at most once per 30 s per range and source (keyed by the
# window's end too: a new minute or hour is computed afresh). Over all clients, the
# rollups of a busy month hold millions of keys; see bench/README.md for both timings.
OVERVIEW_CACHE_SECONDS = 30


@dataclass
class TrafficOverview:
    window: Window
    source: str | None
    series: Series
    sources: list[selectors.SourceTraffic]
    reasons: list[tuple[str, int]]
    top_requests: list[selectors.ClientTraffic]
    top_failures: list[selectors.ClientTraffic]
    failing_networks: list[selectors.FailingNetwork]
    unknown_clients: list[selectors.UnknownClient]
    source_choices: list[str] = field(default_factory=list)

    @property
    def chart_url(self) -> str:
        return chart_url(range_key=self.window.key, source=self.source)

    @property
    def table(self) -> list[TableRow]:
        return table_rows(self.series, client_id=None, source=self.source)

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.sources)

    @property
    def failures(self) -> int:
        return sum(s.failures for s in self.sources)

    @property
    def failure_rate(self) -> float:
        return self.failures / self.requests * 100 if self.requests else 0.0


def traffic_overview(
    *, range_key: str, source: str | None, now: datetime | None = None
) -> TrafficOverview:
    window = window_for(range_key, points=DEFAULT_POINTS, now=now)
    return cache.get_or_set(
        _overview_key(window, source),
        lambda: _traffic_overview(window, source),
        OVERVIEW_CACHE_SECONDS,
    )


def overview_cache_warm(*, now: datetime | None = None) -> None:
    """Compute the overview of every range (all sources) into the cache, replacing what is
    there: beat runs it more often than the cache expires, so viewers of the default view
    rarely compute it (a new minute's window still can, until the next run). Not a
    substitute for the computation being fast: see bench/README.md for both timings."""
    for range_key in RANGES:
        window = window_for(range_key, points=DEFAULT_POINTS, now=now)
        overview = _traffic_overview(window, None)
        cache.set(_overview_key(window, None), overview, OVERVIEW_CACHE_SECONDS)


def _overview_key(window: Window, source: str | None) -> str:
    return f"analytics:overview:{window.key}:{source or ''}:{int(window.end.timestamp())}"


def overview_series(window: Window, *, source: str | None) -> Series:
    """The overview chart's series (every client), cached like the overview."""
    key = (
        f"analytics:series:{window.key}:{source or ''}:{int(window.step.total_seconds())}:"
        f"{int(window.end.timestamp())}"
    )
    return cache.get_or_set(key, lambda: series_read(window, source=source), OVERVIEW_CACHE_SECONDS)


def _traffic_overview(window: Window, source: str | None) -> TrafficOverview:
    span = {"start": window.start, "end": window.end}
    breakdown = selectors.traffic_breakdown(**span)
    sources = _per_source(breakdown)
    choices = [*KNOWN_SOURCES, *(s.source for s in sources)]
    if source is not None:
        sources = [s for s in sources if s.source == source]
    top_requests, top_failures = selectors.client_tops(**span, limit=TOP, source=source)
    return TrafficOverview(
        window=window,
        source=source,
        series=overview_series(window, source=source),
        sources=sources,
        reasons=_reasons(breakdown, source),
        top_requests=top_requests,
        top_failures=top_failures,
        failing_networks=selectors.top_failing_networks(**span, limit=TOP, source=source),
        unknown_clients=selectors.unknown_client_ids(**span, limit=TOP, source=source),
        source_choices=list(dict.fromkeys(choices)),
    )


def _per_source(breakdown: list[tuple[str, str, str, int]]) -> list[selectors.SourceTraffic]:
    totals: dict[str, list[int]] = {}
    for source, outcome, _reason, n in breakdown:
        counts = totals.setdefault(source, [0, 0])
        counts[0] += n
        counts[1] += n if outcome == Outcome.FAILURE else 0
    rows = [selectors.SourceTraffic(s, r, f) for s, (r, f) in totals.items()]
    return sorted(rows, key=lambda row: (-row.requests, row.source))


def _reasons(breakdown, source: str | None) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for row_source, outcome, reason, n in breakdown:
        if outcome == Outcome.FAILURE and source in (None, row_source):
            counts[reason] = counts.get(reason, 0) + n
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


@dataclass(frozen=True)
class ScopeRow:
    scope: str
    granted: bool
    requested: int
    issued: int

    @property
    def verdict(self) -> str:
        if self.granted and not self.requested:
            return "granted, never requested"
        if self.requested and not self.granted:
            return "requested, not granted"
        return "granted and requested"


@dataclass(frozen=True)
class SecretRow:
    hint: str
    created_at: datetime
    last_used_at: datetime | None
    last_used_ip: str | None
    state: str


@dataclass
class ClientActivity:
    client: Client
    window: Window
    series: Series
    sources: list[selectors.SourceTraffic]
    networks: list
    scopes: list[ScopeRow]
    secrets: list[SecretRow]
    scope_since: datetime

    @property
    def chart_url(self) -> str:
        return chart_url(range_key=self.window.key, client_id=self.client.client_id)

    @property
    def table(self) -> list[TableRow]:
        return table_rows(self.series, client_id=self.client.client_id, source=None)

    @property
    def series_requests(self) -> int:
        return self.series.requests

    @property
    def never_requested(self) -> list[ScopeRow]:
        return [row for row in self.scopes if row.granted and not row.requested]

    @property
    def not_granted(self) -> list[ScopeRow]:
        return [row for row in self.scopes if row.requested and not row.granted]


def scope_rows(*, client: Client, start: datetime, end: datetime) -> list[ScopeRow]:
    """Every scope granted to the client or requested by it in [start, end), granted ones
    never requested and requested ones not granted included."""
    granted = set(client.grants.values_list("scope__name", flat=True))
    used = {
        use.scope: use
        for use in selectors.client_scope_usage(client_id=client.client_id, start=start, end=end)
    }
    rows = []
    for scope in sorted(granted | set(used)):
        use = used.get(scope)
        rows.append(
            ScopeRow(
                scope=scope,
                granted=scope in granted,
                requested=use.requested if use else 0,
                issued=use.issued if use else 0,
            )
        )
    return rows


def secret_rows(*, client: Client, now: datetime) -> list[SecretRow]:
    """The client's secrets by hint, with their last successful use. last_used_at/ip are
    kept per secret by the event store as it ingests (a one-row rollup per secret)."""
    rows = []
    for secret in client.secrets.order_by("-created_at", "-id"):
        if secret.is_revoked():
            state = "revoked"
        elif secret.is_expired(now):
            state = "expired"
        else:
            state = "valid"
        rows.append(
            SecretRow(
                hint=secret.hint,
                created_at=secret.created_at,
                last_used_at=secret.last_used_at,
                last_used_ip=secret.last_used_ip,
                state=state,
            )
        )
    return rows


def client_activity(
    *, client: Client, range_key: str, now: datetime | None = None
) -> ClientActivity:
    now = now or timezone.now()
    window = window_for(range_key, points=DEFAULT_POINTS, now=now)
    scope_since = now - SCOPE_WINDOW
    return ClientActivity(
        client=client,
        window=window,
        series=series_read(window, client_id=client.client_id),
        sources=selectors.traffic_by_source(
            start=window.start, end=window.end, client_id=client.client_id
        ),
        networks=selectors.client_networks(client_id=client.client_id),
        scopes=scope_rows(client=client, start=scope_since, end=now),
        secrets=secret_rows(client=client, now=now),
        scope_since=scope_since,
    )
