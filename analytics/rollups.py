"""Rollups of token events: counted per batch in memory, written with one upsert per key.

The store (analytics/store.py) calls `rollups_of` on the records a batch actually inserted
(duplicates skipped by the raw insert are not counted again) and `rollups_write` in the
same transaction as the raw rows. Keys are written sorted, so two writers upserting the
same keys (the drain and a log ingestion) lock them in the same order and cannot deadlock.

`rollups_rebuild_sql` computes the same counts from raw rows in the database (INSERT …
SELECT … GROUP BY): the seeding command, after a bulk COPY, and the migration that adds
the rollups use it. tests/analytics/test_rollups.py checks both against a recount.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Greatest, Least

from audit.events import Endpoint, Outcome, Reason, TokenEventRecord

from .models import (
    SCOPE_MAX_LENGTH,
    ClientDay,
    NetworkFailureDay,
    NetworkFailureHour,
    ScopeExerciseHour,
    ScopeUsageHour,
    SourceNetwork,
    TrafficDayTotal,
    TrafficHour,
    TrafficHourTotal,
    TrafficMinute,
    TrafficMinuteTotal,
)

INTROSPECTION = ScopeExerciseHour.Via.INTROSPECTION.value
# IPv4 /24, IPv6 /48: what one site or one customer network usually holds.
IPV4_PREFIX = 24
IPV6_PREFIX = 48


@dataclass
class Rollups:
    """One batch's counts, by table key."""

    minute: Counter = field(default_factory=Counter)
    hour: Counter = field(default_factory=Counter)
    minute_total: Counter = field(default_factory=Counter)
    hour_total: Counter = field(default_factory=Counter)
    # (day, client_id, source) -> [requests, failures, unknown, last_seen (epoch s)]
    clients: dict = field(default_factory=dict)
    # (client_id, source, network) -> [first_seen, last_seen, count, failures] (epoch s)
    networks: dict = field(default_factory=dict)
    failing_networks: Counter = field(default_factory=Counter)
    # (hour, client_id, source, scope) -> [requested, issued]
    scopes: dict = field(default_factory=dict)
    # (hour, client_id, scope, via, reporter) -> count
    exercises: Counter = field(default_factory=Counter)


@lru_cache(maxsize=65_536)
def network_of(ip: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) holding `ip`, as text: "203.0.113.0/24"."""
    address = ipaddress.ip_address(ip)
    prefix = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def rollups_of(records: list[TokenEventRecord]) -> Rollups:
    """The rollup counts of `records` (validated, each stored once).

    1. One pass over the records counts identical "shapes" (minute, who, address, scopes)
       and keeps each (client, source, address)'s first and last time: one dict update
       per record, since a batch repeats the same few shapes many times.
    2. Each shape then adds its count to every rollup key it belongs to.
    """
    shapes: dict[tuple, int] = {}
    spans: dict[tuple, list[float]] = {}
    latest: dict[tuple, float] = {}
    for r in records:
        at = r.occurred_at
        day = (int(at // 86400) * 86400, r.client_id, r.source)
        if latest.get(day, -1.0) < at:
            latest[day] = at
        shape = (
            int(at // 60) * 60,
            r.client_id,
            r.endpoint,
            r.outcome,
            r.reason,
            r.source,
            r.source_ip,
            r.scopes_requested,
            r.scopes_granted,
            r.subject_client_id,
        )
        shapes[shape] = shapes.get(shape, 0) + 1
        if r.source_ip:
            where = (r.client_id, r.source, r.source_ip)
            span = spans.get(where)
            if span is None:
                spans[where] = [at, at]
            elif at < span[0]:
                span[0] = at
            elif at > span[1]:
                span[1] = at
    rollups = Rollups()
    for shape, n in shapes.items():
        _shape_add(rollups, shape, n)
    for day, at in latest.items():
        rollups.clients[day][3] = at
    for (client_id, source, ip), (first, last) in spans.items():
        seen = rollups.networks[(client_id, source, network_of(ip))]
        seen[0] = first if seen[0] is None else min(seen[0], first)
        seen[1] = last if seen[1] is None else max(seen[1], last)
    return rollups


def _shape_add(rollups: Rollups, shape: tuple, n: int) -> None:
    minute, client_id, endpoint, outcome, reason, source, ip, requested, granted, subject = shape
    hour = minute // 3600 * 3600
    what = (endpoint, outcome, reason, source)
    rollups.minute[(minute, client_id, *what)] += n
    rollups.hour[(hour, client_id, *what)] += n
    rollups.minute_total[(minute, *what)] += n
    rollups.hour_total[(hour, *what)] += n
    failed = outcome == Outcome.FAILURE
    day = rollups.clients.setdefault((minute // 86400 * 86400, client_id, source), [0, 0, 0, 0])
    day[0] += n
    day[1] += n if failed else 0
    day[2] += n if reason == Reason.UNKNOWN_CLIENT else 0
    if ip:
        network = network_of(ip)
        seen = rollups.networks.setdefault((client_id, source, network), [None, None, 0, 0])
        seen[2] += n
        seen[3] += n if failed else 0
        if failed:
            rollups.failing_networks[(hour, source, network)] += n
    if endpoint == Endpoint.INTROSPECT:
        _exercise_add(rollups, hour, subject, granted, client_id, outcome, n)
    if endpoint != Endpoint.TOKEN:
        return
    # Without a scope parameter, a token issued counts as requesting all it carried.
    issued = _scope_list(granted) if outcome == Outcome.SUCCESS else []
    for scope in _scope_list(requested) or issued:
        key = (hour, client_id, source, scope[:SCOPE_MAX_LENGTH])
        rollups.scopes.setdefault(key, [0, 0])[0] += n
    for scope in issued:
        key = (hour, client_id, source, scope[:SCOPE_MAX_LENGTH])
        rollups.scopes.setdefault(key, [0, 0])[1] += n


def _exercise_add(rollups, hour, subject, granted, caller, outcome, n) -> None:
    """An answered introspection of an active token: each of its scopes was exercised by
    the token's client, as seen by the caller (the resource server)."""
    if outcome != Outcome.SUCCESS or not subject:
        return
    for scope in _scope_list(granted):
        key = (hour, subject, scope[:SCOPE_MAX_LENGTH], INTROSPECTION, caller)
        rollups.exercises[key] += n


def _scope_list(scopes: str) -> list[str]:
    """Scope names in a scope string: separated by spaces (RFC 6749 §3.3), empty ones
    (doubled spaces) left out. The SQL rebuild splits the same way."""
    return [scope for scope in scopes.split(" ") if scope]


@lru_cache(maxsize=4096)
def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _day(moment: datetime) -> datetime:
    return datetime.fromtimestamp(moment.timestamp() // 86400 * 86400, tz=UTC)


def _exact(seconds: float) -> datetime:
    """An event's own time (not cached: nearly every one differs)."""
    return datetime.fromtimestamp(seconds, tz=UTC)


def _rows(rollups: Rollups) -> dict:
    """Per model, its upsert rows (key columns then values), sorted by key."""
    return {
        TrafficMinute: [(_moment(k[0]), *k[1:], n) for k, n in sorted(rollups.minute.items())],
        TrafficHour: [(_moment(k[0]), *k[1:], n) for k, n in sorted(rollups.hour.items())],
        TrafficMinuteTotal: [
            (_moment(k[0]), *k[1:], n) for k, n in sorted(rollups.minute_total.items())
        ],
        TrafficHourTotal: [
            (_moment(k[0]), *k[1:], n) for k, n in sorted(rollups.hour_total.items())
        ],
        TrafficDayTotal: [
            (_moment(k[0]), *k[1:], n) for k, n in sorted(_per_day(rollups.hour_total).items())
        ],
        ClientDay: [
            (_moment(k[0]), *k[1:], requests, failures, unknown, _exact(last))
            for k, (requests, failures, unknown, last) in sorted(rollups.clients.items())
        ],
        SourceNetwork: [
            (*k, _moment(first), _moment(last), n, failures)
            for k, (first, last, n, failures) in sorted(rollups.networks.items())
        ],
        NetworkFailureHour: [
            (_moment(k[0]), *k[1:], n) for k, n in sorted(rollups.failing_networks.items())
        ],
        NetworkFailureDay: [
            (_moment(k[0]), *k[1:], n)
            for k, n in sorted(_per_day(rollups.failing_networks).items())
        ],
        ScopeUsageHour: [
            (_moment(k[0]), *k[1:], requested, issued)
            for k, (requested, issued) in sorted(rollups.scopes.items())
        ],
        ScopeExerciseHour: exercise_rows(rollups.exercises),
    }


def _per_day(hourly: Counter) -> Counter:
    """(hour epoch, …) -> count, summed into (day epoch, …)."""
    days: Counter = Counter()
    for (hour, *rest), n in hourly.items():
        days[(hour // 86400 * 86400, *rest)] += n
    return days


def exercise_rows(counts: Counter) -> list[tuple]:
    """ScopeExerciseHour upsert rows of (hour epoch, client_id, scope, via, reporter) ->
    count, sorted by key (the usage-report endpoint writes them too)."""
    return [(_moment(k[0]), *k[1:], n) for k, n in sorted(counts.items())]


# Per model: (key columns, value columns, the SET clause merging a conflicting row).
_UPSERTS = {
    TrafficMinute: (TrafficMinute.KEY, ("count",), "count = {t}.count + excluded.count"),
    TrafficHour: (TrafficHour.KEY, ("count",), "count = {t}.count + excluded.count"),
    TrafficMinuteTotal: (
        TrafficMinuteTotal.KEY,
        ("count",),
        "count = {t}.count + excluded.count",
    ),
    TrafficHourTotal: (TrafficHourTotal.KEY, ("count",), "count = {t}.count + excluded.count"),
    TrafficDayTotal: (TrafficDayTotal.KEY, ("count",), "count = {t}.count + excluded.count"),
    ClientDay: (
        ClientDay.KEY,
        ("requests", "failures", "unknown", "last_seen"),
        "requests = {t}.requests + excluded.requests, "
        "failures = {t}.failures + excluded.failures, "
        "unknown = {t}.unknown + excluded.unknown, "
        "last_seen = GREATEST({t}.last_seen, excluded.last_seen)",
    ),
    SourceNetwork: (
        SourceNetwork.KEY,
        ("first_seen", "last_seen", "count", "failures"),
        "first_seen = LEAST({t}.first_seen, excluded.first_seen), "
        "last_seen = GREATEST({t}.last_seen, excluded.last_seen), "
        "count = {t}.count + excluded.count, failures = {t}.failures + excluded.failures",
    ),
    NetworkFailureHour: (
        NetworkFailureHour.KEY,
        ("count",),
        "count = {t}.count + excluded.count",
    ),
    NetworkFailureDay: (NetworkFailureDay.KEY, ("count",), "count = {t}.count + excluded.count"),
    ScopeUsageHour: (
        ScopeUsageHour.KEY,
        ("requested", "issued"),
        "requested = {t}.requested + excluded.requested, issued = {t}.issued + excluded.issued",
    ),
    ScopeExerciseHour: (ScopeExerciseHour.KEY, ("count",), "count = {t}.count + excluded.count"),
}


def rollups_write(rollups: Rollups, *, rollups_only: tuple[str, ...] | None = None) -> None:
    """Add one batch's counts to the rollup tables, one upsert per key. Call inside the
    transaction that inserted the batch's raw rows. `rollups_only`: those tables only."""
    rows_write(
        {
            model: table_rows
            for model, table_rows in _rows(rollups).items()
            if rollups_only is None or model._meta.db_table in rollups_only
        }
    )


def rows_write(rows: dict) -> None:
    """Upsert rollup rows ({model: rows sorted by key}): added to what is there."""
    if connection.vendor == "postgresql":
        _write_sql(rows)
    else:
        _write_orm(rows)


def _write_sql(rows: dict) -> None:
    """PostgreSQL: per table, one INSERT … SELECT FROM unnest(column arrays) … ON CONFLICT
    DO UPDATE: one statement for all of a batch's keys. executemany (one statement per key,
    pipelined) managed 1,900 events/s in bench-ingest against this one's many times more:
    with per-minute keys a batch of 5,000 events has some 12,000 keys."""
    with connection.cursor() as cursor:
        for model, table_rows in rows.items():
            if not table_rows:
                continue
            key, values, merge = _UPSERTS[model]
            table = model._meta.db_table
            columns = (*key, *values)
            arrays = ", ".join(f"%s::{_pg_type(model, c)}[]" for c in columns)
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
                f"SELECT * FROM unnest({arrays}) "
                f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {merge.format(t=table)}",
                [list(column) for column in zip(*table_rows, strict=True)],
            )


def _pg_type(model, column: str) -> str:
    return {"DateTimeField": "timestamptz", "BigIntegerField": "bigint"}.get(
        model._meta.get_field(column).get_internal_type(), "text"
    )


def _write_orm(rows: dict) -> None:
    """Other databases (SQLite, embedded mode: small batches, one writer at a time): an
    UPDATE adding to the row, else an INSERT, per key."""
    for model, table_rows in rows.items():
        key, values, _merge = _UPSERTS[model]
        for row in table_rows:
            lookup = dict(zip(key, row[: len(key)], strict=True))
            new = dict(zip(values, row[len(key) :], strict=True))
            if not model.objects.filter(**lookup).update(**_added(model, new)):
                model.objects.create(**lookup, **new)


def _added(model, new: dict) -> dict:
    if model is ClientDay:
        return {
            "requests": F("requests") + new["requests"],
            "failures": F("failures") + new["failures"],
            "unknown": F("unknown") + new["unknown"],
            "last_seen": Greatest(F("last_seen"), new["last_seen"]),
        }
    if model is SourceNetwork:
        return {
            "first_seen": Least(F("first_seen"), new["first_seen"]),
            "last_seen": Greatest(F("last_seen"), new["last_seen"]),
            "count": F("count") + new["count"],
            "failures": F("failures") + new["failures"],
        }
    return {name: F(name) + value for name, value in new.items()}


# --- Rebuilding from raw rows (PostgreSQL) ------------------------------------------------

_IN_RANGE = "occurred_at >= %(start)s AND occurred_at < %(end)s"
_NETWORK = "network(set_masklen(source_ip, CASE family(source_ip) WHEN 4 THEN 24 ELSE 48 END))"
# The scopes a token request counts as requested (see _shape_add).
_REQUESTED = (
    "CASE WHEN replace(e.scopes_requested, ' ', '') <> '' THEN e.scopes_requested "
    "WHEN e.outcome = 'success' THEN e.scopes_granted ELSE '' END"
)

# Table names and fragments are constants of this module; values go as parameters.
_REBUILD = [
    f"""
    INSERT INTO {{table}} (bucket, client_id, endpoint, outcome, reason, source, count)
    SELECT date_trunc('{{unit}}', occurred_at), client_id, endpoint, outcome, reason, source,
           count(*)
    FROM {{raw}} WHERE {_IN_RANGE}
    GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (bucket, client_id, endpoint, outcome, reason, source)
    DO UPDATE SET count = {{table}}.count + excluded.count
    """,  # noqa: S608
    f"""
    INSERT INTO {{table}} (bucket, endpoint, outcome, reason, source, count)
    SELECT date_trunc('{{unit}}', occurred_at), endpoint, outcome, reason, source, count(*)
    FROM {{raw}} WHERE {_IN_RANGE}
    GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (bucket, endpoint, outcome, reason, source)
    DO UPDATE SET count = {{table}}.count + excluded.count
    """,  # noqa: S608
    f"""
    INSERT INTO analytics_clientday
        (bucket, client_id, source, requests, failures, unknown, last_seen)
    SELECT date_trunc('day', occurred_at), client_id, source, count(*),
           count(*) FILTER (WHERE outcome = 'failure'),
           count(*) FILTER (WHERE reason = 'unknown_client'), max(occurred_at)
    FROM {{raw}} WHERE {_IN_RANGE}
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (bucket, client_id, source) DO UPDATE SET
        requests = analytics_clientday.requests + excluded.requests,
        failures = analytics_clientday.failures + excluded.failures,
        unknown = analytics_clientday.unknown + excluded.unknown,
        last_seen = GREATEST(analytics_clientday.last_seen, excluded.last_seen)
    """,  # noqa: S608
    f"""
    INSERT INTO analytics_sourcenetwork
        (client_id, source, network, first_seen, last_seen, count, failures)
    SELECT client_id, source, {_NETWORK}::text, min(occurred_at), max(occurred_at), count(*),
           count(*) FILTER (WHERE outcome = 'failure')
    FROM {{raw}} WHERE source_ip IS NOT NULL AND {_IN_RANGE}
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (client_id, source, network) DO UPDATE SET
        first_seen = LEAST(analytics_sourcenetwork.first_seen, excluded.first_seen),
        last_seen = GREATEST(analytics_sourcenetwork.last_seen, excluded.last_seen),
        count = analytics_sourcenetwork.count + excluded.count,
        failures = analytics_sourcenetwork.failures + excluded.failures
    """,  # noqa: S608
    f"""
    INSERT INTO {{table}} (bucket, source, network, count)
    SELECT date_trunc('{{unit}}', occurred_at), source, {_NETWORK}::text, count(*)
    FROM {{raw}} WHERE outcome = 'failure' AND source_ip IS NOT NULL AND {_IN_RANGE}
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (bucket, source, network)
    DO UPDATE SET count = {{table}}.count + excluded.count
    """,  # noqa: S608
    f"""
    INSERT INTO analytics_scopeusagehour (bucket, client_id, source, scope, requested, issued)
    SELECT bucket, client_id, source, scope, sum(requested), sum(issued) FROM (
        SELECT date_trunc('hour', e.occurred_at) AS bucket, e.client_id, e.source,
               left(r.scope, {SCOPE_MAX_LENGTH}) AS scope, 1 AS requested, 0 AS issued
        FROM {{raw}} e, unnest(string_to_array({_REQUESTED}, ' ')) AS r(scope)
        WHERE e.endpoint = 'token' AND {_IN_RANGE}
        UNION ALL
        SELECT date_trunc('hour', e.occurred_at), e.client_id, e.source,
               left(g.scope, {SCOPE_MAX_LENGTH}), 0, 1
        FROM {{raw}} e, unnest(string_to_array(e.scopes_granted, ' ')) AS g(scope)
        WHERE e.endpoint = 'token' AND e.outcome = 'success' AND {_IN_RANGE}
    ) AS u
    WHERE scope <> ''
    GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (bucket, client_id, source, scope) DO UPDATE SET
        requested = analytics_scopeusagehour.requested + excluded.requested,
        issued = analytics_scopeusagehour.issued + excluded.issued
    """,  # noqa: S608
    f"""
    INSERT INTO analytics_scopeexercisehour (bucket, client_id, scope, via, reporter, count)
    SELECT date_trunc('hour', e.occurred_at), e.subject_client_id,
           left(g.scope, {SCOPE_MAX_LENGTH}), 'introspection', e.client_id, count(*)
    FROM {{raw}} e, unnest(string_to_array(e.scopes_granted, ' ')) AS g(scope)
    WHERE e.endpoint = 'introspect' AND e.outcome = 'success' AND e.subject_client_id <> ''
      AND g.scope <> '' AND {_IN_RANGE}
    GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (bucket, client_id, scope, via, reporter)
    DO UPDATE SET count = analytics_scopeexercisehour.count + excluded.count
    """,  # noqa: S608
]


# Per rollup table, in the order every writer follows: (statement, its unit).
_STATEMENTS = {
    "analytics_trafficminute": (_REBUILD[0], "minute"),
    "analytics_traffichour": (_REBUILD[0], "hour"),
    "analytics_trafficminutetotal": (_REBUILD[1], "minute"),
    "analytics_traffichourtotal": (_REBUILD[1], "hour"),
    "analytics_trafficdaytotal": (_REBUILD[1], "day"),
    "analytics_clientday": (_REBUILD[2], "day"),
    "analytics_sourcenetwork": (_REBUILD[3], ""),
    "analytics_networkfailurehour": (_REBUILD[4], "hour"),
    "analytics_networkfailureday": (_REBUILD[4], "day"),
    "analytics_scopeusagehour": (_REBUILD[5], ""),
    "analytics_scopeexercisehour": (_REBUILD[6], ""),
}
ROLLUP_TABLES = tuple(_STATEMENTS)


def rollups_rebuild_sql(
    *,
    start: datetime,
    end: datetime,
    table: str = "analytics_tokenevent",
    rollups: tuple[str, ...] = ROLLUP_TABLES,
    upsert: bool = True,
) -> None:
    """Add the raw events in [start, end) to the rollups, computed by the database (INSERT …
    SELECT … GROUP BY … ON CONFLICT DO UPDATE, keys in sorted order). PostgreSQL only.
    Adds: run it once per range of rows.

    The store runs it on each batch's inserted rows (its temporary table), the seeding
    command on each day it loads, and migrations on the events already stored. `table`:
    where the raw rows are; `rollups`: the rollup tables to write (a migration writes only
    those that existed at its point in history). `upsert=False`: plain INSERTs into the
    bucketed tables, for a bulk load into empty tables without their unique keys (the
    seeding command); SourceNetwork, which has no bucket, is always upserted.
    """
    params = {"start": start, "end": end}
    with connection.cursor() as cursor:
        for rollup in rollups:
            statement, unit = _STATEMENTS[rollup]
            if not upsert and rollup != "analytics_sourcenetwork":
                # No key to lock in order, no conflict to merge: no ORDER BY either.
                statement = re.sub(r"ORDER BY [\d, ]+", "", statement.split("ON CONFLICT")[0])
            cursor.execute(statement.format(table=rollup, unit=unit, raw=table), params)


# Rows of a rollup that events can recount (usage reports also write exercise rows).
_RECOUNTABLE = {"analytics_scopeexercisehour": " AND via = 'introspection'"}


def rollups_rebuild(
    *,
    start: datetime,
    end: datetime,
    rollups: tuple[str, ...] = ROLLUP_TABLES,
    replace: bool = False,
) -> None:
    """Add the stored events in [start, end) to the rollups: after a bulk load without the
    store, or with `replace=True` as a repair (a restore, a lost or doubted table): the
    rollup rows of the range are deleted first, in the same transaction. `replace` needs
    whole UTC days (ClientDay's buckets) and leaves SourceNetwork alone (its rows span
    all time, so a range of them cannot be recounted) and the exercise rows of usage
    reports (not events). rollups_rebuild_sql on PostgreSQL;
    elsewhere (SQLite) the raw rows are read back and counted like a batch."""
    if replace:
        if start != _day(start) or end != _day(end):
            raise ValueError("replace needs start and end at midnight UTC")
        rollups = tuple(r for r in rollups if r != "analytics_sourcenetwork")
        # Adapted as the ORM adapts them: SQLite stores datetimes as text, and a raw
        # datetime parameter would compare as another text ('T' separator, offset).
        bounds = [connection.ops.adapt_datetimefield_value(value) for value in (start, end)]
        with transaction.atomic():
            with connection.cursor() as cursor:
                for table in rollups:
                    cursor.execute(
                        f"DELETE FROM {table} WHERE bucket >= %s AND bucket < %s"  # noqa: S608
                        + _RECOUNTABLE.get(table, ""),
                        bounds,
                    )
            rollups_rebuild(start=start, end=end, rollups=rollups)
        return
    if connection.vendor == "postgresql":
        rollups_rebuild_sql(start=start, end=end, rollups=rollups)
        return
    from .models import TokenEvent

    fields = ("occurred_at", "client_id", "endpoint", "outcome", "reason", "source")
    # The column came with the exercise rollup (a migration before it must not read it).
    exercise = "analytics_scopeexercisehour" in rollups
    subject = ("subject_client_id",) if exercise else ()
    rows = TokenEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end).values_list(
        *fields, "source_ip", "scopes_requested", "scopes_granted", *subject
    )
    records = [
        TokenEventRecord(
            id="",
            occurred_at=row[0].timestamp(),
            **dict(zip(fields[1:], row[1:6], strict=True)),
            source_ip=row[6],
            scopes_requested=row[7],
            scopes_granted=row[8],
            subject_client_id=row[9] if exercise else "",
            status_code=0,
        )
        for row in rows.iterator(chunk_size=2000)
    ]
    rollups_write(rollups_of(records), rollups_only=rollups)
