"""The token-event drain: the Redis buffer into TokenEvent, and last use of secrets and clients.

Why in tokens: the drain stores `TokenEvent` rows (audit) and moves `last_used_at` of
`ClientSecret` and `Client` (clients) forward in the same transaction, so a batch counts
towards last use exactly when its events are stored. tokens sits above both apps and
already owns the buffer (sink.py writes it), so the drain imports both directly. The
alternative, a hook that clients registers with a drain kept in audit, would need the
subscriber to run inside audit's transaction and read its staging table: more moving parts
for the one subscriber there is. audit keeps what belongs to the event table itself: the
model and the record (audit/events.py), which validates items and turns them into rows.

Production: the token service RPUSHes each event's `TokenEventRecord.to_buffer()` onto
EVENT_BUFFER_KEY, and the `drain_token_events` Celery task calls `token_events_drain`:

1. Take the drain lock (one drain at a time; a TTL frees it when a worker dies).
2. Claim a batch: if the processing list still holds items from a killed run, re-read
   them; else move up to `batch_size` items from the buffer to the processing list in
   one Lua call, so an item is always in exactly one of the two lists.
3. In one transaction: insert the batch into TokenEvent, skipping ids already there
   (COPY into a temporary table on PostgreSQL), and move last_used of secrets and clients
   forward.
4. Only after commit, trim the batch off the processing list (the acknowledgement).

A worker killed anywhere in 2–4 leaves the batch in the processing list; the next run
writes it again and ON CONFLICT (id) DO NOTHING drops what had already committed. So no
event is lost and none is duplicated. docs/events.md describes the format and guarantees.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from datetime import UTC, datetime
from functools import cache

import psycopg
import redis
from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import Q

from audit.events import COLUMNS, SOURCE_KEYWARD, TokenEventRecord
from audit.models import TokenEvent
from clients.models import Client, ClientSecret

logger = logging.getLogger(__name__)

# Redis list the token service RPUSHes encoded events onto (production mode).
EVENT_BUFFER_KEY = "keyward:token-events"
# The batch being written; non-empty only while a drain runs or after one was killed.
EVENT_PROCESSING_KEY = EVENT_BUFFER_KEY + ":processing"
EVENT_DRAIN_LOCK_KEY = EVENT_BUFFER_KEY + ":drain-lock"
# Unix time the last drain run finished; tokens/pipeline.py reads it (health, worker fallback).
DRAIN_HEARTBEAT_KEY = EVENT_BUFFER_KEY + ":drained-at"
# Seconds the drain lock outlives a silent holder. Renewed after every batch, so it only
# has to cover one batch (~0.1 s for 5,000 events); it is also how long a killed worker
# delays the next drain.
DRAIN_LOCK_SECONDS = 10

# Errors a bad row causes, as opposed to an unavailable database (OperationalError), which
# must leave the batch for the next run. COPY is psycopg's own API, so its errors arrive
# unwrapped; encoding errors are ValueErrors.
_ROW_ERRORS = (DataError, IntegrityError, psycopg.DataError, psycopg.IntegrityError, ValueError)

# Moves up to ARGV[1] items from the head of KEYS[1] to the tail of KEYS[2] atomically and
# returns them. RPUSH in chunks: Lua's unpack() is limited to a few thousand values.
_MOVE_BATCH_LUA = """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items == 0 then return items end
redis.call('LTRIM', KEYS[1], #items, -1)
for i = 1, #items, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 999, #items)))
end
return items
"""


def token_events_write(events: list[TokenEventRecord]) -> None:
    """Write events straight to the table: the embedded-mode sink and the Redis-down fallback.

    Validated like buffer items. Also moves last_used forward, since in embedded mode no
    drain runs.
    """
    records = [TokenEventRecord.from_dict(vars(event)) for event in events]
    with transaction.atomic():
        TokenEvent.objects.bulk_create(
            [record.as_model() for record in records], ignore_conflicts=True
        )
        _last_used_update_orm(records)


# --- The drain ------------------------------------------------------------------------


@cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=3)


def event_buffer_redis() -> redis.Redis:
    """The Redis client the drain uses (one connection pool per process)."""
    return _redis(settings.REDIS_URL)


def token_events_drain(*, batch_size: int = 5000, max_batches: int = 40) -> int:
    """Drain the Redis event buffer into TokenEvent; returns how many rows were inserted.

    A no-op in embedded mode (no Redis), where events are written directly. Must run
    outside a transaction: acknowledging relies on the batch having really committed.
    """
    if not settings.USE_REDIS:
        return 0
    client = event_buffer_redis()
    lock = client.lock(EVENT_DRAIN_LOCK_KEY, timeout=DRAIN_LOCK_SECONDS, blocking=False)
    try:
        if not lock.acquire():
            logger.info("token events: another drain is running")
            return 0
    except redis.RedisError as exc:
        logger.warning("token events: Redis unavailable, nothing drained (%s)", exc)
        return 0
    inserted = received = skipped = 0
    started = time.monotonic()
    try:
        for _ in range(max_batches):
            items, recovered = _batch_claim(client, batch_size)
            if not items:
                break
            if recovered:
                logger.warning(
                    "token events: re-writing %d items of an unfinished batch", len(items)
                )
            try:
                batch_inserted, batch_skipped = _batch_write(items)
            except _ROW_ERRORS:
                # Some row passed validation but the database refused it. Rather than
                # retry the batch forever, find it: one transaction per item.
                logger.exception("token events: batch refused, writing it item by item")
                batch_inserted, batch_skipped = _batch_write_item_by_item(items)
            # The acknowledgement: only now, after commit. Trim by count, not DEL, so a
            # drain that lost its lock can never drop a batch claimed after its own.
            client.ltrim(EVENT_PROCESSING_KEY, len(items), -1)
            inserted += batch_inserted
            skipped += batch_skipped
            received += len(items)
            lock.reacquire()
            if len(items) < batch_size and not recovered:
                break
    except redis.exceptions.LockError:
        logger.warning("token events: drain lock lost, stopping; the next run continues")
    except redis.RedisError as exc:
        logger.warning("token events: Redis error, stopping; the next run continues (%s)", exc)
    else:
        # Only a run that got through without a Redis error counts as a heartbeat.
        with contextlib.suppress(redis.RedisError):
            client.set(DRAIN_HEARTBEAT_KEY, time.time())
    finally:
        # Expired or Redis gone: the TTL frees it anyway.
        with contextlib.suppress(redis.RedisError):
            lock.release()
    if received:
        logger.info(
            "token events: %d received, %d inserted, %d already present, %d malformed, %.2f s",
            received,
            inserted,
            received - inserted - skipped,
            skipped,
            time.monotonic() - started,
        )
    return inserted


def _batch_claim(client, batch_size: int) -> tuple[list[bytes], bool]:
    """The batch to write: what a killed run left in the processing list, else a new one."""
    leftover = client.lrange(EVENT_PROCESSING_KEY, 0, -1)
    if leftover:
        return leftover, True
    # EVALSHA; a Script object is cheap (a SHA-1 of the source) and reloads the script
    # into a Redis that lost it.
    move_batch = client.register_script(_MOVE_BATCH_LUA)
    items = move_batch(keys=[EVENT_BUFFER_KEY, EVENT_PROCESSING_KEY], args=[batch_size])
    return items, False


def _records_parse(items: list[bytes]) -> tuple[list[TokenEventRecord], int]:
    """Valid records, unique by id, and the number of malformed items (logged, dropped)."""
    records: dict[str, TokenEventRecord] = {}
    skipped = 0
    for item in items:
        try:
            record = TokenEventRecord.from_buffer(item)
        except (ValueError, KeyError, TypeError) as exc:
            skipped += 1
            logger.error("token events: skipping malformed item %.200r (%s)", item, exc)
            continue
        records.setdefault(record.id, record)
    return list(records.values()), skipped


def _batch_write_item_by_item(items: list[bytes]) -> tuple[int, int]:
    inserted = skipped = 0
    for item in items:
        try:
            item_inserted, item_skipped = _batch_write([item])
        except _ROW_ERRORS as exc:
            logger.error("token events: skipping item the database refused %.200r (%s)", item, exc)
            item_inserted, item_skipped = 0, 1
        inserted += item_inserted
        skipped += item_skipped
    return inserted, skipped


def _batch_write(items: list[bytes]) -> tuple[int, int]:
    """Insert one batch and update last_used in one transaction; (inserted, malformed)."""
    records, skipped = _records_parse(items)
    if not records:
        return 0, skipped
    return token_events_store(records), skipped


def token_events_store(records: list[TokenEventRecord]) -> int:
    """Insert validated records and move last_used forward, in one committed transaction.

    Returns how many were new: ids already stored are skipped, so writing the same records
    twice stores them once. The drain and log ingestion both write through here.
    """
    # durable: refuses to run nested, where "committed" would not mean committed.
    with transaction.atomic(durable=True):
        if connection.vendor == "postgresql":
            inserted = _records_copy(records)
            _last_used_update_sql()
        else:
            inserted = _records_bulk_create(records)
            _last_used_update_orm(records)
    return inserted


_STAGE_TABLE = "keyward_token_event_batch"
_COLUMN_LIST = ", ".join(COLUMNS)


def _records_copy(records: list[TokenEventRecord]) -> int:
    """PostgreSQL: COPY into a temporary table, then insert what is not there yet."""
    table = TokenEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE {_STAGE_TABLE} (LIKE {table}) ON COMMIT DROP"  # noqa: S608
        )
        with cursor.copy(f"COPY {_STAGE_TABLE} ({_COLUMN_LIST}) FROM STDIN") as copy:
            for record in records:
                copy.write_row(record.as_row())
        cursor.execute(
            f"INSERT INTO {table} ({_COLUMN_LIST}) "  # noqa: S608
            f"SELECT {_COLUMN_LIST} FROM {_STAGE_TABLE} ON CONFLICT (id) DO NOTHING"
        )
        return cursor.rowcount


def _last_used_update_sql() -> None:
    """PostgreSQL: last_used of secrets and clients from the staged batch, two statements.

    Secrets: any successful request the secret authenticated. Clients: successful token
    requests only (Client.last_used_at is "last successful token"). Only ever forward, so
    re-writing a batch or writing batches out of order is harmless. Only Keyward's own
    events count: another service's client of the same name is not this client.
    """
    secret_table = ClientSecret._meta.db_table
    client_table = Client._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {secret_table} AS s
            SET last_used_at = b.occurred_at, last_used_ip = b.source_ip
            FROM (
                SELECT DISTINCT ON (secret_id) secret_id, occurred_at, source_ip
                FROM {_STAGE_TABLE}
                WHERE outcome = 'success' AND secret_id IS NOT NULL AND source = 'keyward'
                ORDER BY secret_id, occurred_at DESC
            ) AS b
            WHERE s.id = b.secret_id
              AND (s.last_used_at IS NULL OR s.last_used_at < b.occurred_at)
            """  # noqa: S608
        )
        cursor.execute(
            f"""
            UPDATE {client_table} AS c
            SET last_used_at = b.occurred_at
            FROM (
                SELECT client_id, max(occurred_at) AS occurred_at
                FROM {_STAGE_TABLE}
                WHERE outcome = 'success' AND endpoint = 'token' AND client_known
                  AND source = 'keyward'
                GROUP BY client_id
            ) AS b
            WHERE c.client_id = b.client_id
              AND (c.last_used_at IS NULL OR c.last_used_at < b.occurred_at)
            """  # noqa: S608
        )


def _records_bulk_create(records: list[TokenEventRecord]) -> int:
    """Other databases (SQLite in development): bulk_create, ignoring ids already stored."""
    ids = [uuid.UUID(record.id) for record in records]
    present = {i.hex for i in TokenEvent.objects.filter(id__in=ids).values_list("id", flat=True)}
    new = [record.as_model() for record in records if record.id not in present]
    TokenEvent.objects.bulk_create(new, ignore_conflicts=True, batch_size=500)
    return len(new)


def _last_used_update_orm(records: list[TokenEventRecord]) -> None:
    """Same rules as _last_used_update_sql, one conditional UPDATE per distinct secret and
    client of the batch (not per event)."""
    secrets: dict[int, tuple[float, str | None]] = {}
    clients: dict[str, float] = {}
    for event in records:
        if event.outcome != TokenEvent.Outcome.SUCCESS or event.source != SOURCE_KEYWARD:
            continue
        at = event.occurred_at
        sid = event.secret_id
        if sid is not None and (sid not in secrets or secrets[sid][0] < at):
            secrets[sid] = (at, event.source_ip)
        if event.endpoint == TokenEvent.Endpoint.TOKEN and event.client_known:
            cid = event.client_id
            if cid not in clients or clients[cid] < at:
                clients[cid] = at
    for sid, (seconds, ip) in secrets.items():
        at = datetime.fromtimestamp(seconds, tz=UTC)
        ClientSecret.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=at), pk=sid
        ).update(last_used_at=at, last_used_ip=ip)
    for cid, seconds in clients.items():
        at = datetime.fromtimestamp(seconds, tz=UTC)
        Client.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=at), client_id=cid
        ).update(last_used_at=at)
