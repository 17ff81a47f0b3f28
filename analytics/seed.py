"""Synthetic token traffic for benchmarks and demos (`manage.py seed_traffic`).

PostgreSQL, many events (bulk), one day at a time, each day in its own transaction:
1. Generate the day's events in time order and COPY them (text format) into a table with
   no index: the day's partition-to-be when the day has no partition yet, else an
   unlogged staging table.
2. Add them to the rollups from that table (analytics.rollups.rollups_rebuild_sql: INSERT
   … SELECT … GROUP BY … ON CONFLICT DO UPDATE, the store's own statements), so the
   rollups count exactly the seeded rows whatever the tables held before.
3. A new day: ATTACH PARTITION, which builds the partition's indexes in one sort each
   (instead of one index insertion per row and index). An existing day: INSERT … SELECT
   from the staging table into it.
When every rollup table is empty, their indexes and unique keys are dropped before the
first day (the rollups then take plain INSERTs: each day's buckets are its own) and built
again after the last, for the same reason; SourceNetwork, which spans days, keeps its key
and its upserts. SQLite: the records go through the store in batches (slower, meant for a few
thousand demo events).
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction

from audit.events import COLUMNS, TokenEventRecord
from clients.models import Client, ClientSecret
from clients.secrets import secret_hash

from .partitions import (
    PARENT,
    PARTITION_LOCK,
    day_start,
    partition_name,
    partitions_existing,
)
from .rollups import ROLLUP_TABLES, rollups_rebuild_sql
from .store import token_events_store

SEED_NAME = "Seed client "
# Seed clients have an owner like any real one, or the scope review would list each of them
# as "Client without an owner" and bury the demo's deliberate findings (bin/dev).
SEED_OWNER = "platform@example.com"
STAGE = "analytics_seed_stage"
SOURCE_NETWORK = "analytics_sourcenetwork"
# work_mem and maintenance_work_mem of each day's transaction (the defaults are a few MB).
BULK_MEMORY = "256MB"
CHUNK = 20_000
NULL = "\\N"  # COPY text format

# (weight, endpoint, outcome, reason, status)
OUTCOMES = [
    (900, "token", "success", "ok", 200),
    (40, "introspect", "success", "ok", 200),
    (15, "revoke", "success", "ok", 200),
    (15, "token", "failure", "bad_secret", 401),
    (8, "token", "failure", "unknown_client", 401),
    (8, "token", "failure", "rate_limited", 429),
    (6, "token", "failure", "invalid_scope", 400),
    (4, "token", "failure", "expired_secret", 401),
    (4, "token", "failure", "ip_not_allowed", 401),
]
SOURCES = ["keyward"] * 17 + ["keycloak", "auth0", "okta"]
SCOPES = ["orders:read", "orders:write", "billing:read", "reports:read", "users:admin"]
AGENTS = ["python-requests/2.32", "curl/8.5.0", "Go-http-client/2.0", "okhttp/4.12"]


@dataclass(frozen=True)
class SeedResult:
    clients_created: int
    events: int
    seconds: float


def seed_clients(count: int) -> list[tuple[str, int]]:
    """(client_id, secret pk) of `count` seed clients, creating the missing ones in bulk
    (one secret each, a random unknowable value: seeded clients cannot get tokens)."""
    existing = list(
        ClientSecret.objects.filter(client__name__startswith=SEED_NAME)
        .order_by("client_id", "id")
        .values_list("client__client_id", "id")[:count]
    )
    missing = count - len(existing)
    if missing > 0:
        with transaction.atomic():
            clients = Client.objects.bulk_create(
                [
                    Client(
                        name=f"{SEED_NAME}{len(existing) + i + 1}",
                        environment="production",
                        owner_email=SEED_OWNER,
                    )
                    for i in range(missing)
                ],
                batch_size=2000,
            )
            made = ClientSecret.objects.bulk_create(
                [
                    ClientSecret(
                        client=c, secret_hash=secret_hash(secrets.token_urlsafe(32)), hint="seed"
                    )
                    for c in clients
                ],
                batch_size=2000,
            )
        existing += [(s.client.client_id, s.pk) for s in made]
    return existing


def _lines(
    clients: list[tuple[str, int]],
    times: list[float],
    rng: random.Random,
    run: str,
    first: int = 0,
) -> Iterator[list[str]]:
    """Chunks of COPY text lines (tab-separated, COLUMNS order), one event per time in
    `times`, in that order; ids are `run` and the event's number from `first`."""
    weights = [w for w, *_ in OUTCOMES]
    scope_sets = [" ".join(SCOPES[: 1 + i % len(SCOPES)]) for i in range(len(SCOPES))]
    for chunk in range(0, len(times), CHUNK):
        at_times = times[chunk : chunk + CHUNK]
        kinds = rng.choices(OUTCOMES, weights=weights, k=len(at_times))
        lines = []
        for n, (kind, seconds) in enumerate(zip(kinds, at_times, strict=True), first + chunk):
            _w, endpoint, outcome, reason, status = kind
            # Skewed: a few clients make most of the traffic.
            index = int(len(clients) * rng.random() ** 3)
            client_id, secret_id = clients[index]
            known = "t"
            if reason == "unknown_client":
                client_id, secret_id, known = f"ghost{rng.randrange(500)}", NULL, "f"
            at = datetime.fromtimestamp(seconds, tz=UTC)
            attacker = outcome == "failure" and rng.random() < 0.5
            ip = (
                f"198.51.{rng.randrange(100, 120)}.{rng.randrange(256)}"
                if attacker
                else f"10.{index >> 8 & 255}.{index & 255}.{rng.randrange(1, 8)}"
            )
            granted = scope_sets[index % len(scope_sets)] if outcome == "success" else ""
            requested = granted if rng.random() < 0.5 else ""
            jti = f"{n:032x}" if endpoint == "token" and outcome == "success" else ""
            lines.append(
                f"{run}{n:016x}\t{at.isoformat()}\t{endpoint}\t{client_id}\t{known}\t"
                f"{secret_id if outcome == 'success' else NULL}\t{outcome}\t{reason}\t"
                f"{ip}\t{AGENTS[index % 4]}\t{requested}\t{granted}\t{jti}\t{status}\t"
                f"{rng.random() * 3:.3f}\t{SOURCES[index % 20]}\t\n"
            )
        yield lines


def _days(start: float, end: float, events: int) -> list[tuple[datetime, float, float, int]]:
    """(midnight, first moment, end, events) of each UTC day in [start, end): the events
    shared in proportion to the time each day covers."""
    days, placed = [], 0
    day = datetime.fromtimestamp(start, tz=UTC).date()
    while (lo := max(start, day_start(day).timestamp())) < end:
        hi = min(end, day_start(day + timedelta(days=1)).timestamp())
        share = round(events * (hi - start) / (end - start)) - placed
        days.append((day_start(day), lo, hi, share))
        placed += share
        day += timedelta(days=1)
    return days


def seed_events(
    *,
    clients: list[tuple[str, int]],
    events: int,
    days: float,
    seed: int | None = None,
    progress: Callable[[int], None] = lambda n: None,
    step: Callable[[str], None] = lambda what: None,
) -> float:
    """Store `events` events over the last `days` days; returns the seconds it took.
    `progress(n)` is told of every n events stored, `step(what)` of the steps after."""
    rng = random.Random(seed)
    run = secrets.token_hex(8)
    now = time.time()
    start = now - days * 86400
    started = time.monotonic()
    if connection.vendor != "postgresql":
        times = sorted(start + rng.random() * (now - start) for _ in range(events))
        _seed_through_store(_lines(clients, times, rng, run), progress)
        return time.monotonic() - started
    dropped = _rollup_indexes_drop()
    days_ = _days(start, now, events)
    firsts = [sum(count for *_, count in days_[:i]) for i in range(len(days_))]

    def generate(i: int) -> list[list[str]]:
        _day, lo, hi, count = days_[i]
        times = sorted(lo + rng.random() * (hi - lo) for _ in range(count))
        return list(_lines(clients, times, rng, run, firsts[i]))

    # The next day is generated (Python, one core) while the database loads this one
    # (the other core); one worker, so days are generated in order and a seed repeats.
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(generate, 0) if days_ else None
            for i, (day, *_rest) in enumerate(days_):
                chunks = pending.result()
                if i + 1 < len(days_):
                    pending = pool.submit(generate, i + 1)
                # Without their unique keys, the rollups take plain INSERTs: each day's
                # buckets are its own, and the tables held nothing before.
                _day_load(day, iter(chunks), progress, upsert=not dropped)
    finally:
        if dropped:
            step(f"building {len(dropped)} rollup indexes again")
            _rollup_indexes_create(dropped)
    step("ANALYZE")
    with connection.cursor() as cursor:
        for table in (PARENT, *ROLLUP_TABLES):
            cursor.execute(f"ANALYZE {table}")
    return time.monotonic() - started


def _day_load(day: datetime, chunks: Iterator[list[str]], progress, *, upsert: bool) -> None:
    """One day's events and their rollups, in one transaction (the module's steps)."""
    table, new = partition_name(day.date()), True
    end = day + timedelta(days=1)
    with transaction.atomic(), connection.cursor() as cursor:
        # Partition DDL under the lock retention and the store take (analytics/partitions.py).
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITION_LOCK])
        if day.date() in partitions_existing(cursor) and not _partition_drop_if_empty(
            cursor, table
        ):
            table, new = STAGE, False
            cursor.execute(f"DROP TABLE IF EXISTS {STAGE}")
            cursor.execute(f"CREATE UNLOGGED TABLE {STAGE} (LIKE {PARENT} INCLUDING DEFAULTS)")
        else:
            # ATTACH needs the parent's NOT NULL and CHECK constraints on the table.
            cursor.execute(
                f"CREATE TABLE {table} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
            )
        with cursor.copy(f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for lines in chunks:
                copy.write("".join(lines))
                progress(len(lines))
        # A new table has no statistics: the rollups' GROUP BYs would be planned for one
        # row and spill to disk. Memory for them and for the index builds of ATTACH.
        cursor.execute(f"ANALYZE {table}")
        cursor.execute(f"SET LOCAL work_mem = '{BULK_MEMORY}'")
        cursor.execute(f"SET LOCAL maintenance_work_mem = '{BULK_MEMORY}'")
        rollups_rebuild_sql(start=day, end=end, table=table, upsert=upsert)
        if new:
            cursor.execute(
                f"ALTER TABLE {PARENT} ATTACH PARTITION {table} "
                f"FOR VALUES FROM ('{day.isoformat()}') TO ('{end.isoformat()}')"
            )
        else:
            cursor.execute(f"INSERT INTO {PARENT} SELECT * FROM {STAGE}")  # noqa: S608
            cursor.execute(f"DROP TABLE {STAGE}")


def _partition_drop_if_empty(cursor, table: str) -> bool:
    """An empty partition (made ahead by retention) is dropped, to be loaded as a new one."""
    cursor.execute(f"SELECT EXISTS (SELECT FROM {table})")  # noqa: S608
    if cursor.fetchone()[0]:
        return False
    cursor.execute(f"DROP TABLE {table}")
    return True


def _rollup_indexes_drop() -> list[str]:
    """When every rollup table is empty: drop their indexes and unique keys (not primary
    keys; SourceNetwork keeps its key, it is upserted across days) and return the
    statements that build them again. Otherwise drop nothing."""
    with transaction.atomic(), connection.cursor() as cursor:
        for table in ROLLUP_TABLES:
            cursor.execute(f"SELECT EXISTS (SELECT FROM {table})")  # noqa: S608
            if cursor.fetchone()[0]:
                return []
        cursor.execute(
            """
            SELECT c.relname, i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid),
                   con.conname, pg_get_constraintdef(con.oid)
            FROM pg_index i
            JOIN pg_class c ON c.oid = i.indrelid
            LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.contype = 'u'
            WHERE c.relname = ANY(%s) AND NOT i.indisprimary
              AND NOT (c.relname = %s AND i.indisunique)
            """,
            [list(ROLLUP_TABLES), SOURCE_NETWORK],
        )
        rebuild = []
        for table, index, index_sql, constraint, constraint_sql in cursor.fetchall():
            if constraint:
                cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {constraint}")
                rebuild.append(f"ALTER TABLE {table} ADD CONSTRAINT {constraint} {constraint_sql}")
            else:
                cursor.execute(f"DROP INDEX {index}")
                rebuild.append(index_sql)
    return rebuild


def _rollup_indexes_create(statements: list[str]) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL maintenance_work_mem = '{BULK_MEMORY}'")
        for statement in statements:
            cursor.execute(statement)


def _seed_through_store(chunks: Iterator[list[str]], progress) -> None:
    for lines in chunks:
        token_events_store([_record(line) for line in lines])
        progress(len(lines))


def _record(line: str) -> TokenEventRecord:
    values = dict(zip(COLUMNS, line.rstrip("\n").split("\t"), strict=True))
    return TokenEventRecord.from_dict(
        {
            **values,
            "occurred_at": datetime.fromisoformat(values["occurred_at"]).timestamp(),
            "client_known": values["client_known"] == "t",
            "secret_id": None if values["secret_id"] == NULL else int(values["secret_id"]),
            "status_code": int(values["status_code"]),
            "duration_ms": float(values["duration_ms"]),
        }
    )
