"""Synthetic token traffic for benchmarks and demos (`manage.py seed_traffic`).

PostgreSQL, many events (bulk): generated lines are COPYed (text format) into an unlogged
staging table with no indexes, the rollups are computed from it with INSERT … SELECT …
GROUP BY (analytics.rollups.rollups_rebuild_sql), and one INSERT … SELECT moves the rows
into the partitioned event table, whose indexes are then built row by row by PostgreSQL.
Computing the rollups from the staging table, not the event table, counts exactly the
seeded rows whatever the table held before. SQLite: the records go through the store in
batches (slower, meant for a few thousand demo events).
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction

from audit.events import COLUMNS, TokenEventRecord
from clients.models import Client, ClientSecret
from clients.secrets import secret_hash

from .partitions import partitions_create
from .rollups import rollups_rebuild_sql
from .store import token_events_store

SEED_NAME = "Seed client "
STAGE = "analytics_seed_stage"
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
                    Client(name=f"{SEED_NAME}{len(existing) + i + 1}", environment="production")
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
    clients: list[tuple[str, int]], events: int, start: float, span: float, rng: random.Random
) -> Iterator[list[str]]:
    """Chunks of COPY text lines (tab-separated, COLUMNS order)."""
    run = secrets.token_hex(8)
    weights = [w for w, *_ in OUTCOMES]
    scope_sets = [" ".join(SCOPES[: 1 + i % len(SCOPES)]) for i in range(len(SCOPES))]
    n = 0
    while n < events:
        size = min(CHUNK, events - n)
        kinds = rng.choices(OUTCOMES, weights=weights, k=size)
        lines = []
        for kind in kinds:
            _w, endpoint, outcome, reason, status = kind
            # Skewed: a few clients make most of the traffic.
            index = int(len(clients) * rng.random() ** 3)
            client_id, secret_id = clients[index]
            known = "t"
            if reason == "unknown_client":
                client_id, secret_id, known = f"ghost{rng.randrange(500)}", NULL, "f"
            at = datetime.fromtimestamp(start + rng.random() * span, tz=UTC)
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
            n += 1
        yield lines


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
    `progress(n)` is told of every n events generated, `step(what)` of each later step."""
    rng = random.Random(seed)
    now = time.time()
    start = now - days * 86400
    started = time.monotonic()
    if connection.vendor != "postgresql":
        _seed_through_store(clients, events, start, now - start, rng, progress)
        return time.monotonic() - started
    first_day = datetime.fromtimestamp(start, tz=UTC).date()
    last_day = datetime.fromtimestamp(now, tz=UTC).date()
    with transaction.atomic(), connection.cursor() as cursor:
        partitions_create(
            cursor,
            [first_day + timedelta(days=d) for d in range((last_day - first_day).days + 1)],
        )
        cursor.execute(f"DROP TABLE IF EXISTS {STAGE}")
        cursor.execute(
            f"CREATE UNLOGGED TABLE {STAGE} (LIKE analytics_tokenevent INCLUDING DEFAULTS)"
        )
        with cursor.copy(f"COPY {STAGE} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for lines in _lines(clients, events, start, now - start, rng):
                copy.write("".join(lines))
                progress(len(lines))
        step("generated and copied; rollups (INSERT … SELECT … GROUP BY)")
        rollups_rebuild_sql(
            start=datetime.fromtimestamp(start - 1, tz=UTC),
            end=datetime.fromtimestamp(now + 1, tz=UTC),
            table=STAGE,
        )
        step("events into the partitioned table (indexes built as rows arrive)")
        cursor.execute(
            f"INSERT INTO analytics_tokenevent SELECT * FROM {STAGE}"  # noqa: S608
        )
        cursor.execute(f"DROP TABLE {STAGE}")
    step("ANALYZE")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE analytics_tokenevent")
    return time.monotonic() - started


def _seed_through_store(clients, events, start, span, rng, progress) -> None:
    for lines in _lines(clients, events, start, span, rng):
        records = [_record(line) for line in lines]
        token_events_store(records)
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
