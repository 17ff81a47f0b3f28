"""Reads for the charts and dashboards, all from rollups: their cost follows the number of
buckets and keys in the range, not the number of raw events.

Which unit: ranges up to MINUTE_RANGE (48 h) are exact to the minute; longer ones have
start and end floored to the hour. `traffic_series` chooses by its step instead (under an
hour: minutes). Per-minute rollups are kept as long as raw events
(KEYWARD_EVENT_RETENTION_DAYS), the others for KEYWARD_ROLLUP_RETENTION_DAYS.

Which table: reads of one client, or split by client, need the client dimension
(TrafficMinute, TrafficHour); reads over every client together use the totals
(TrafficMinuteTotal, TrafficHourTotal), a few dozen rows per bucket whatever the number of
clients. The overview's per-client lists (client_totals, unknown_client_ids) cover their
range with the coarsest buckets that fit (`_cover`): minutes up to the first whole hour,
hours up to the first whole day, then ClientDay's days (one row per client and day), and
back down at the end. A range that ends after now reads the day it ends in whole: no event
has happened after now (events up to a day ahead, from a skewed clock, are accepted by the
store and would be counted one refresh early). The totals (traffic_breakdown) are covered
the same way, with TrafficDayTotal's days.

Top lists over PRUNED_FROM or more (client_tops, top_failing_networks), PostgreSQL: exact,
but only the keys that can still win are summed. Each day's leaders (ClientDay,
NetworkFailureDay, through a (bucket, count) index) summed exactly give a total that at
least `limit` keys reach; a key's total over the range is at most the sum of its day rows
around it, so only keys with a day row of that total / (days × sources) or more can
reach it, and only those are summed exactly (through (key, bucket) indexes). Summing every
client of 30 days was ~330,000 rows; this reads a few thousand (bench/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from audit.events import Outcome

from .models import (
    ClientDay,
    NetworkFailureDay,
    NetworkFailureHour,
    ScopeUsageHour,
    SourceNetwork,
    TrafficDayTotal,
    TrafficHour,
    TrafficHourTotal,
    TrafficMinute,
    TrafficMinuteTotal,
)

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
MINUTE_RANGE = timedelta(hours=48)
# Shorter ranges read few per-client rows (minutes, this hour): summing them all is cheaper
# than bounding them by days first (client_tops).
PRUNED_FROM = timedelta(hours=6)
# Ties in the top lists in code point order, as Python sorts (SQLite's default collation).
_C = ' COLLATE "C"' if connection.vendor == "postgresql" else ""
# Per unit: the table with the client dimension, the one with every client together.
_TABLES = {MINUTE: (TrafficMinute, TrafficMinuteTotal), HOUR: (TrafficHour, TrafficHourTotal)}
# Every client together per unit, days included (traffic_breakdown, traffic_series).
_TOTALS = {MINUTE: TrafficMinuteTotal, HOUR: TrafficHourTotal, DAY: TrafficDayTotal}

# The pruned top lists' days (a CTE) and arrays of ids (`x = ANY(…)`: one index probe each).
_DAYS = "days AS (SELECT day FROM unnest(%s::timestamptz[]) AS day)"
_IDS = "(SELECT ids FROM {cte})::varchar[]"

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


def _ceil(moment: datetime, unit: timedelta) -> datetime:
    floor = _floor(moment, unit)
    return floor if floor == moment else floor + unit


def _traffic(start: datetime, end: datetime, **filters) -> QuerySet:
    """The traffic rollup rows in [start, end), optional filters with None meaning any;
    the totals table unless a client_id is given."""
    unit = MINUTE if end - start <= MINUTE_RANGE else HOUR
    wanted = {name: value for name, value in filters.items() if value is not None}
    model = _TABLES[unit][0 if "client_id" in wanted else 1]
    return model.objects.filter(
        bucket__gte=_floor(start, unit), bucket__lt=_floor(end, unit), **wanted
    )


def _cover(
    start: datetime, end: datetime, units: tuple = (DAY, HOUR, MINUTE)
) -> list[tuple[timedelta, datetime, datetime]]:
    """[start, end) (floored as `_traffic` floors) as (unit, lo, hi) pieces, each a whole
    number of its unit's buckets, the coarsest of `units` that fit (the module's
    docstring)."""
    unit = MINUTE if end - start <= MINUTE_RANGE else HOUR
    lo, hi = _floor(start, unit), _floor(end, unit)
    if hi >= timezone.now():
        hi = _ceil(hi, units[0])
    return _pieces(lo, hi, units)


def _pieces(lo: datetime, hi: datetime, units: tuple) -> list:
    if lo >= hi:
        return []
    unit, *finer = units
    if not finer:
        return [(unit, lo, hi)]
    first, last = _ceil(lo, unit), _floor(hi, unit)
    if first >= last:
        return _pieces(lo, hi, tuple(finer))
    finer = tuple(finer)
    return [*_pieces(lo, first, finer), (unit, first, last), *_pieces(last, hi, finer)]


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
    unit = MINUTE if step < HOUR else HOUR
    model = _TABLES[unit][1 if client_id is None else 0]
    step = max(step, unit)
    first = _floor(start, unit)
    if client_id is None and _whole_days(first, end, step):
        model = TrafficDayTotal
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


def _whole_days(first: datetime, end: datetime, step: timedelta) -> bool:
    """Whether steps from `first` can be summed from days: whole days from a midnight, to
    a midnight or after now (the day then read whole, as `_cover` reads it)."""
    return (
        step % DAY == timedelta(0)
        and first == _floor(first, DAY)
        and (end == _floor(end, DAY) or end >= timezone.now())
    )


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
    by_requests, by_failures = client_tops(start=start, end=end, limit=limit, source=source)
    return by_requests if by == "requests" else by_failures


def top_failing_networks(
    *, start: datetime, end: datetime, limit: int = 10, source: str | None = None
) -> list[FailingNetwork]:
    """Source networks (/24, /48) with the most failed requests; hourly, so start and end
    are floored to the hour. On PostgreSQL over PRUNED_FROM or more, only the networks
    that can still win are summed exactly (`_NETWORKS_PRUNED`)."""
    lo, hi = _floor(start, HOUR), _floor(end, HOUR)
    if connection.vendor == "postgresql" and end - start >= PRUNED_FROM and lo < hi:
        rows = _failing_networks_pruned(lo, hi, limit, source)
        return [FailingNetwork(network, source, n) for network, source, n in rows]
    rows = NetworkFailureHour.objects.filter(bucket__gte=lo, bucket__lt=hi)
    if source is not None:
        rows = rows.filter(source=source)
    rows = rows.values("network", "source").annotate(n=Sum("count"))
    rows = rows.order_by("-n", "network", "source")
    return [FailingNetwork(r["network"], r["source"], r["n"]) for r in rows[:limit]]


# As _TOPS_SEEDED and _TOPS_PRUNED, per network and source: NetworkFailureDay has one row
# per network, source and day, so a network that can reach the limit-th total has a day
# of that total / the days around the range, or more.
_NETWORKS_SEEDED = f"""
    WITH {_DAYS}, seeds AS (
        SELECT ARRAY(
            SELECT top.network FROM days, LATERAL (
                SELECT network FROM analytics_networkfailureday
                WHERE bucket = days.day {{source}} ORDER BY count DESC LIMIT %s
            ) AS top
        ) AS ids
    ), seeded AS (
        SELECT network, source, sum(n) AS n FROM ({{seeded}}) AS p GROUP BY network, source
    )
    SELECT coalesce((SELECT n FROM seeded ORDER BY n DESC OFFSET %s LIMIT 1), 0)
"""  # noqa: S608 - constants of this module; values go as parameters
_NETWORKS_PRUNED = f"""
    WITH {_DAYS}, candidates AS (
        SELECT ARRAY(
            SELECT row.network FROM days, LATERAL (
                SELECT network FROM analytics_networkfailureday
                WHERE bucket = days.day {{source}} AND count >= %s
            ) AS row
        ) AS ids
    )
    SELECT network, source, CAST(sum(n) AS bigint) AS n FROM ({{totals}}) AS p
    GROUP BY network, source ORDER BY n DESC, network, source LIMIT %s
"""  # noqa: S608 - constants of this module; values go as parameters


def _days_around(lo: datetime, hi: datetime) -> tuple[list[datetime], list[datetime]]:
    """The midnights around [lo, hi) as [first, end], and every day from first to end."""
    around = [_floor(lo, DAY), _ceil(hi, DAY)]
    return around, [around[0] + DAY * n for n in range((around[1] - around[0]) // DAY)]


def _source_filter(source: str | None) -> tuple[str, list]:
    """The pruned statements' source condition and its parameter (none for any source)."""
    return ("", []) if source is None else ("AND source = %s", [source])


def _failing_networks_pruned(lo, hi, limit, source) -> list[tuple]:
    _around, days = _days_around(lo, hi)
    where_source, of_source = _source_filter(source)

    def pieces(cte: str) -> tuple[str, list]:
        selects, params = [], []
        for unit, piece_lo, piece_hi in _pieces(lo, hi, (DAY, HOUR)):
            table = (NetworkFailureDay if unit == DAY else NetworkFailureHour)._meta.db_table
            selects.append(
                f"SELECT network, source, count AS n FROM {table} "  # noqa: S608
                f"WHERE network = ANY({_IDS.format(cte=cte)}) "
                f"AND bucket >= %s AND bucket < %s {where_source}"
            )
            params += [piece_lo, piece_hi, *of_source]
        return " UNION ALL ".join(selects), params

    seeded, seeded_params = pieces("seeds")
    totals, totals_params = pieces("candidates")
    with connection.cursor() as cursor:
        cursor.execute(
            _NETWORKS_SEEDED.format(source=where_source, seeded=seeded),
            [days, *of_source, limit, *seeded_params, limit - 1],
        )
        least = cursor.fetchone()[0]
        cursor.execute(
            _NETWORKS_PRUNED.format(source=where_source, totals=totals),
            [days, *of_source, max(1, -(-int(least) // len(days))), *totals_params, limit],
        )
        return cursor.fetchall()


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
    """client_ids that were tried but name no client, most attempts first. `last_seen`: the
    last attempt's time where whole days were read, else the start of its minute or hour."""
    pieces, params = _pieces_sql(
        start,
        end,
        source,
        day="client_id, source, unknown AS n, last_seen AS last FROM {table} WHERE unknown > 0",
        finer="client_id, source, count AS n, bucket AS last FROM {table} "
        "WHERE reason = 'unknown_client'",
    )
    if not pieces:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT client_id, source, CAST(sum(n) AS bigint), max(last) "  # noqa: S608
            f"FROM ({pieces}) AS p GROUP BY client_id, source "
            f"ORDER BY 3 DESC, client_id{_C}, source{_C} LIMIT %s",
            [*params, limit],
        )
        return [
            UnknownClient(client_id, source, n, _moment(last))
            for client_id, source, n, last in cursor.fetchall()
        ]


def client_tops(
    *, start: datetime, end: datetime, limit: int = 10, source: str | None = None
) -> tuple[list[ClientTraffic], list[ClientTraffic]]:
    """The overview's two top lists in one read: the `limit` clients with the most requests,
    and those with the most failures (any). Summed and ranked by the database, so only
    the winners travel, not a row per client. On PostgreSQL, only the clients that can
    still win are summed exactly (`_TOPS_PRUNED`)."""
    if connection.vendor == "postgresql" and end - start >= PRUNED_FROM:
        rows = _client_tops_pruned(start, end, limit, source)
    else:
        rows = _client_tops_summed(start, end, limit, source)
    tops = {"n": [], "f": []}
    for which, client_id, requests, failures in rows:
        tops[which].append(ClientTraffic(client_id, requests, failures))
    return tops["n"], tops["f"]


_DAY_SUMS = "client_id, requests AS n, failures AS f FROM {table} WHERE 1 = 1"
_FINER_SUMS = (
    "client_id, count AS n, "
    "CASE WHEN outcome = 'failure' THEN count ELSE 0 END AS f FROM {table} WHERE 1 = 1"
)
# The two lists from the clients' totals (a CTE `totals`): requests, then failures (any).
_TOPS_RANKED = f"""
    SELECT * FROM (
        SELECT 'n', client_id, n, f FROM totals ORDER BY n DESC, client_id{_C} LIMIT %s
    ) AS by_requests
    UNION ALL
    SELECT * FROM (
        SELECT 'f', client_id, n, f FROM totals WHERE f > 0
        ORDER BY f DESC, client_id{_C} LIMIT %s
    ) AS by_failures
"""  # noqa: S608 - constants of this module; values go as parameters


def _client_tops_summed(start, end, limit, source) -> list[tuple]:
    """Every client's totals over the range's pieces, then the two lists."""
    pieces, params = _pieces_sql(start, end, source, day=_DAY_SUMS, finer=_FINER_SUMS)
    if not pieces:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH totals AS (SELECT client_id, CAST(sum(n) AS bigint) AS n, "  # noqa: S608
            f"CAST(sum(f) AS bigint) AS f FROM ({pieces}) AS p GROUP BY client_id) "
            f"{_TOPS_RANKED}",
            [*params, limit, limit],
        )
        return cursor.fetchall()


# Exact top lists without summing every client over the range (PostgreSQL), in two
# statements (the second is planned knowing its thresholds: index scans of a few rows):
# 1. `_TOPS_SEEDED`: each day's clients with the most requests and the most failures
#    (ClientDay over the whole days around the range, through its (bucket, requests) and
#    (bucket, failures) indexes: `limit` rows a day), summed exactly over the range. At
#    least `limit` clients have the limit-th largest of those totals: a client below it
#    is in no list. Also how many ClientDay rows a client can have around the range (days
#    × sources).
# 2. `_TOPS_PRUNED`: a client's total is at most the sum of its ClientDay rows around the
#    range, so a client that can reach the limit-th total has a row of that total / the
#    rows a client can have, or more: those rows, through the same indexes, name the
#    candidates (with skewed traffic, a few hundred of 10,000 clients), and only they are
#    summed exactly, through the (client_id, bucket) indexes, and ranked.
# Flat traffic makes more candidates: slower, never wrong. A batch stored between the two
# statements only adds to counts, so the first statement's threshold stays low enough.
_TOPS_SEEDED = f"""
    WITH {_DAYS}, seeds AS (
        SELECT ARRAY(
            SELECT top.client_id FROM days, LATERAL (
                SELECT client_id FROM analytics_clientday
                WHERE bucket = days.day {{source}} ORDER BY requests DESC LIMIT %s
            ) AS top
            UNION
            SELECT top.client_id FROM days, LATERAL (
                SELECT client_id FROM analytics_clientday
                WHERE bucket = days.day {{source}} AND failures > 0
                ORDER BY failures DESC LIMIT %s
            ) AS top
        ) AS ids
    ), seeded AS (
        SELECT client_id, sum(n) AS n, sum(f) AS f FROM ({{seeded}}) AS p GROUP BY client_id
    )
    SELECT
        coalesce((SELECT n FROM seeded ORDER BY n DESC OFFSET %s LIMIT 1), 0),
        coalesce((SELECT f FROM seeded ORDER BY f DESC OFFSET %s LIMIT 1), 0),
        (SELECT count(DISTINCT source) FROM analytics_trafficdaytotal
         WHERE bucket >= %s AND bucket < %s {{source}})
"""  # noqa: S608 - constants of this module; values go as parameters
_TOPS_PRUNED = f"""
    WITH {_DAYS}, candidates AS (
        SELECT ARRAY(
            SELECT row.client_id FROM days, LATERAL (
                SELECT client_id FROM analytics_clientday
                WHERE bucket = days.day {{source}} AND requests >= %s
            ) AS row
            UNION
            SELECT row.client_id FROM days, LATERAL (
                SELECT client_id FROM analytics_clientday
                WHERE bucket = days.day {{source}} AND failures >= %s
            ) AS row
        ) AS ids
    ), totals AS (
        SELECT client_id, CAST(sum(n) AS bigint) AS n, CAST(sum(f) AS bigint) AS f
        FROM ({{totals}}) AS p GROUP BY client_id
    )
    {_TOPS_RANKED}
"""  # noqa: S608 - constants of this module; values go as parameters


def _client_tops_pruned(start, end, limit, source) -> list[tuple]:
    cover = _cover(start, end)
    if not cover:
        return []
    around, days = _days_around(cover[0][1], cover[-1][2])
    where_source, of_source = _source_filter(source)
    seeded, seeded_params = _pieces_sql(
        start, end, source, day=_DAY_SUMS, finer=_FINER_SUMS, clients=_IDS.format(cte="seeds")
    )
    totals, totals_params = _pieces_sql(
        start, end, source, day=_DAY_SUMS, finer=_FINER_SUMS, clients=_IDS.format(cte="candidates")
    )
    with connection.cursor() as cursor:
        cursor.execute(
            _TOPS_SEEDED.format(source=where_source, seeded=seeded),
            [days, *of_source, limit, *of_source, limit, *seeded_params]
            + [limit - 1, limit - 1, *around, *of_source],
        )
        least_requests, least_failures, sources = cursor.fetchone()
        rows_most = len(days) * max(1, sources)
        cursor.execute(
            _TOPS_PRUNED.format(source=where_source, totals=totals),
            [days, *of_source, -(-int(least_requests) // rows_most), *of_source]
            + [max(1, -(-int(least_failures) // rows_most)), *totals_params, limit, limit],
        )
        return cursor.fetchall()


def _moment(value) -> datetime:
    """A timestamp from raw SQL: PostgreSQL gives datetimes, SQLite text."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _pieces_sql(
    start: datetime,
    end: datetime,
    source: str | None,
    *,
    day: str,
    finer: str,
    clients: str | None = None,
) -> tuple[str, list]:
    """One SELECT per piece of [start, end) (`_cover`), joined by UNION ALL: `day` reads
    ClientDay, `finer` the per-client minute or hour rollup (each "columns FROM {table}
    WHERE …"); the piece's bucket range and the source are added, and with `clients` (an
    SQL array of client_ids, PostgreSQL) only those clients."""
    selects, params = [], []
    for unit, lo, hi in _cover(start, end):
        model = ClientDay if unit == DAY else _TABLES[unit][0]
        text = (day if unit == DAY else finer).format(table=model._meta.db_table)
        selects.append(f"SELECT {text} AND bucket >= %s AND bucket < %s")
        # As the ORM would pass them (SQLite compares its own text form).
        params += [connection.ops.adapt_datetimefield_value(moment) for moment in (lo, hi)]
        if source is not None:
            selects[-1] += " AND source = %s"
            params.append(source)
        if clients is not None:
            selects[-1] += f" AND client_id = ANY({clients})"
    return " UNION ALL ".join(selects), params


def _source(source: str | None) -> dict:
    return {} if source is None else {"source": source}


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
    reasons from one read of the totals rollups (the overview needs both). Covered like
    the per-client lists (`_cover`): 24 hours are up to a day of TrafficDayTotal, hours
    and an hour of minutes, not 1,440 minutes; 30 days are ~31 days, not 720 hours."""
    counts: dict[tuple[str, str, str], int] = {}
    for unit, lo, hi in _cover(start, end):
        rows = _TOTALS[unit].objects.filter(bucket__gte=lo, bucket__lt=hi, **_source(source))
        rows = rows.values_list("source", "outcome", "reason").annotate(n=Sum("count"))
        for *key, n in rows.order_by():
            counts[tuple(key)] = counts.get(tuple(key), 0) + n
    return [(*key, n) for key, n in counts.items()]


def client_totals(
    *, start: datetime, end: datetime, source: str | None = None
) -> list[ClientTraffic]:
    """Requests and failures of every client_id in [start, end), in no order: one read per
    piece of the range (`_cover`) for both top lists."""
    totals: dict[str, list[int]] = {}
    for unit, lo, hi in _cover(start, end):
        if unit == DAY:
            rows = ClientDay.objects.values("client_id").annotate(
                n=Sum("requests"), failed=Sum("failures")
            )
        else:
            rows = _TABLES[unit][0].objects.values("client_id")
            rows = rows.annotate(n=Sum("count"), failed=_FAILURES)
        rows = rows.filter(bucket__gte=lo, bucket__lt=hi, **_source(source)).order_by()
        for client_id, n, failed in rows.values_list("client_id", "n", "failed"):
            counts = totals.setdefault(client_id, [0, 0])
            counts[0] += n
            counts[1] += failed
    return [ClientTraffic(c, n, failed) for c, (n, failed) in totals.items()]
