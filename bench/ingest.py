"""Ingestion benchmark (not a test): events/s from the Redis buffer through the drain
(validation, raw rows, rollups, last_used) into PostgreSQL, beside a raw COPY of the same
rows into an unindexed table, in the same run. `bin/bench-ingest --help`.

1. Generate N events like the seeding command's (skewed clients, 7 % failures, four
   sources, IPv4 networks, scopes), as the token service's buffer items.
2. Baseline: COPY the same rows (psycopg's write_row, as the store does) into a plain
   table with no index and no key, one transaction, then drop it.
3. Ceiling: COPY the same rows into the event table itself (partitioned, with the
   explorer's indexes), nothing else (no dedup, no rollups), in batches of the drain's
   size, each in a transaction that is rolled back: what the indexes alone cost, so the
   most any drain with those indexes could reach.
4. End to end: RPUSH the items onto the buffer (not timed: that is the token service's
   side, one command per request), then time the drain (`analytics.drain.token_events_drain`,
   what the Celery task runs) until the buffer is empty and every event is stored.
5. From a file: the same events under new ids, written as Keyward JSON Lines to a
   temporary file (not timed), then `manage.py ingest_logs FILE --format keyward` timed
   (parsing, validation, the store in the command's batches).
6. Print the rates and the ratios to the baseline.

Uses DATABASE_URL and REDIS_URL (PostgreSQL and Redis are required) and leaves the events
in that database (source "bench"), like a seed; point it at a scratch database.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import sys
import time

import django


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=5000, help="drain batch size")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyward.settings")
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql" or not settings.USE_REDIS:
        sys.exit("bench-ingest needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL)")
    call_command("migrate", verbosity=0)
    records = _records(args)
    print(f"{len(records):,} events, {args.clients:,} clients, drain batches of {args.batch:,}")
    baseline = _raw_copy(records)
    print(f"raw COPY, unindexed table:               {baseline:>10,.0f} events/s")
    ceiling = _indexed_copy(records, args.batch)
    print(
        f"COPY into the indexed event table alone: {ceiling:>10,.0f} events/s "
        f"({ceiling / baseline:.0%}: the ceiling with the explorer's indexes)"
    )
    drained = _drain(records, args.batch)
    print(f"buffer → drain → store (+ rollups):      {drained:>10,.0f} events/s")
    print(
        f"ratio: {drained / baseline:.0%} of raw COPY (goal ≥ 50 %), "
        f"{drained / ceiling:.0%} of the indexed COPY"
    )
    from_file = _ingest_file(records)
    print(f"ingest_logs from a file (+ rollups):     {from_file:>10,.0f} events/s")
    print(
        f"ratio: {from_file / baseline:.0%} of raw COPY (goal ≥ 50 %), "
        f"{from_file / ceiling:.0%} of the indexed COPY"
    )


def _records(args) -> list:
    from analytics.seed import _lines, _record, seed_clients

    clients = seed_clients(args.clients)
    now = time.time()
    rng = random.Random(args.seed)
    # The last hour, in time order: live traffic, as the drain sees it.
    times = sorted(now - 3600 + rng.random() * 3600 for _ in range(args.events))
    run = secrets.token_hex(8)
    lines = [line for chunk in _lines(clients, times, rng, run) for line in chunk]
    records = [_record(line) for line in lines]
    for record in records:
        record.source = "bench" if record.source == "keyward" else record.source
    return records


def _raw_copy(records) -> float:
    from django.db import connection, transaction

    from audit.events import COLUMNS

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_raw_copy")
        cursor.execute(
            "CREATE TABLE bench_raw_copy AS SELECT * FROM analytics_tokenevent WITH NO DATA"
        )
    started = time.perf_counter()
    copy_sql = f"COPY bench_raw_copy ({', '.join(COLUMNS)}) FROM STDIN"
    with transaction.atomic(), connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
        for record in records:
            copy.write_row(record.as_row())
    elapsed = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_raw_copy")
    return len(records) / elapsed


def _indexed_copy(records, batch: int) -> float:
    from django.db import connection

    from analytics.store import _partitions_ready
    from audit.events import COLUMNS

    _partitions_ready(records)
    copy_sql = f"COPY analytics_tokenevent ({', '.join(COLUMNS)}) FROM STDIN"
    elapsed = 0.0
    for start in range(0, len(records), batch):
        with connection.cursor() as cursor:
            cursor.execute("BEGIN")
            began = time.perf_counter()
            with cursor.copy(copy_sql) as copy:
                for record in records[start : start + batch]:
                    copy.write_row(record.as_row())
            elapsed += time.perf_counter() - began
            cursor.execute("ROLLBACK")
    return len(records) / elapsed


def _ingest_file(records) -> float:
    import dataclasses
    import io
    import tempfile
    import uuid

    import orjson
    from django.core.management import call_command

    with tempfile.NamedTemporaryFile(suffix=".jsonl") as file:
        for record in records:
            line = dataclasses.replace(record, id=uuid.uuid4().hex)
            file.write(orjson.dumps(line) + b"\n")
        file.flush()
        started = time.perf_counter()
        call_command("ingest_logs", file.name, format="keyward", stdout=io.StringIO())
        return len(records) / (time.perf_counter() - started)


def _drain(records, batch: int) -> float:
    from analytics.drain import token_events_drain
    from analytics.models import TokenEvent
    from tokens.buffer import EVENT_BUFFER_KEY, event_buffer_redis

    client = event_buffer_redis()
    before = TokenEvent.objects.count()
    with client.pipeline(transaction=False) as pipe:
        for start in range(0, len(records), 10_000):
            pipe.rpush(EVENT_BUFFER_KEY, *[r.to_buffer() for r in records[start : start + 10_000]])
        pipe.execute()
    started = time.perf_counter()
    stored = 0
    while client.llen(EVENT_BUFFER_KEY):
        stored += token_events_drain(batch_size=batch)
    elapsed = time.perf_counter() - started
    assert stored == len(records) == TokenEvent.objects.count() - before, "events lost"
    return len(records) / elapsed


if __name__ == "__main__":
    main()
