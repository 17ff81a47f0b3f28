"""The token-event drain: the Redis buffer into the event store.

Production: the token service RPUSHes each event's `TokenEventRecord.to_buffer()` onto
EVENT_BUFFER_KEY, and the `drain_token_events` Celery task calls `token_events_drain`:

1. Take the drain lock (one drain at a time; a TTL frees it when a worker dies).
2. Claim a batch: if the processing list still holds items from a killed run, re-read
   them; else move up to `batch_size` items from the buffer to the processing list in
   one Lua call, so an item is always in exactly one of the two lists.
3. Store the batch through analytics.store.token_events_store, in one transaction: the
   raw rows (ids already there skipped), their rollups, and last_used of secrets and
   clients moved forward.
4. Only after commit, trim the batch off the processing list (the acknowledgement).

A worker killed anywhere in 2–4 leaves the batch in the processing list; the next run
writes it again and ON CONFLICT (occurred_at, id) DO NOTHING drops what had already committed. So no
event is lost and none is duplicated. docs/events.md describes the format and guarantees.
"""

from __future__ import annotations

import contextlib
import logging
import time

import psycopg
import redis
from django.conf import settings
from django.db import DataError, IntegrityError

from audit.events import TokenEventRecord
from tokens.buffer import (
    DRAIN_HEARTBEAT_KEY,
    EVENT_BUFFER_KEY,
    EVENT_DRAIN_LOCK_KEY,
    EVENT_PROCESSING_KEY,
    event_buffer_redis,
)

from .store import token_events_store

logger = logging.getLogger(__name__)

__all__ = ["token_events_drain", "token_events_store"]
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


# --- The drain ------------------------------------------------------------------------


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
