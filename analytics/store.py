"""The token-event store: the one module that writes token events, and the reads of raw
events that the apps below analytics need.

Everything that stores events comes through `token_events_store` (the drain, log
ingestion, the HTTP ingest endpoint) or `token_events_write` (the token service when
there is no Redis buffer). Nothing else writes the event table, so a columnar engine can
take over by replacing this module (docs/architecture.md, "Event store").

One call stores one batch in one transaction (on PostgreSQL after creating, in a short
transaction of its own, any day partition the batch needs and lacks):
0. Leave out events outside the retention window (counted: too old, too new).
1. PostgreSQL: COPY the batch into a temporary table, then INSERT … SELECT … ON CONFLICT
   (occurred_at, id) DO NOTHING into the partitioned table; other databases: bulk_create
   of the ids not stored yet. Ids already stored are skipped, so a batch written twice is
   stored once.
2. Add the inserted rows (only those: duplicates are not counted twice) to the rollups
   (analytics/rollups.py), one upsert per key. PostgreSQL: the rows not inserted are
   deleted from the temporary table and the database counts what is left with the
   rollups' own rebuild statements (INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE),
   so the drain and a rebuild are one code path; other databases: counted in memory.
3. Move last_used of secrets and clients forward (Keyward's own successful events only).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from audit.events import COLUMNS, SOURCE_KEYWARD, TokenEventRecord
from clients.models import Client, ClientSecret

from .models import TokenEvent
from .partitions import PARTITION_LOCK, day_start, partitions_create, partitions_existing
from .rollups import rollups_of, rollups_rebuild_sql, rollups_write
from .signals import events_stored

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreCounts:
    """What one store call did with its records."""

    inserted: int
    duplicates: int  # ids already stored, or repeated within the call
    too_old: int  # before the retention window: not stored
    too_new: int  # more than FUTURE_LIMIT ahead of now (a broken clock): not stored


# Events this far ahead of now are refused rather than given a partition of their own that
# retention would not drop for years.
FUTURE_LIMIT = timedelta(days=1)


def token_events_store(records: list[TokenEventRecord]) -> int:
    """Insert validated records, their rollups and last_used, in one committed transaction.

    Returns how many were new: ids already stored are skipped, so writing the same records
    twice stores them once. Events outside the retention window are not stored (logged;
    `token_events_store_counts` returns the numbers). The drain and log ingestion both
    write through here.
    """
    return token_events_store_counts(records).inserted


def token_events_store_counts(records: list[TokenEventRecord]) -> StoreCounts:
    """token_events_store, returning every count (for ingestion summaries)."""
    _partitions_ready(records)
    # durable: refuses to run nested, where "committed" would not mean committed.
    with transaction.atomic(durable=True):
        counts = _store(records)
    if counts.inserted:
        _stored_announce(records, counts.inserted)
    return counts


def _stored_announce(records: list[TokenEventRecord], inserted: int) -> None:
    """Tell the apps above (alerts) that new events are committed and visible."""
    newest = datetime.fromtimestamp(max(record.occurred_at for record in records), tz=UTC)
    for receiver, result in events_stored.send_robust(
        sender=TokenEvent, inserted=inserted, newest=newest
    ):
        if isinstance(result, Exception):
            logger.error("token events: %r failed on events_stored: %r", receiver, result)


def token_events_write(events: list[TokenEventRecord]) -> int:
    """Write events straight to the table: the embedded-mode sink and the Redis-down
    fallback of the token service (which finds it through settings.KEYWARD_EVENT_STORE).

    Validated like buffer items, since the caller built them unchecked. May run inside
    the caller's transaction.

    Embedded mode has no drain, so this write announces its events (events_stored) once
    they are committed, as a drained batch does: alerts then follow them within seconds,
    not at beat's next evaluation. The receiver only enqueues a task on the embedded
    broker (one small file), so the detections never run on the token request. Not in
    the Redis-down fallback: there the broker is that same unreachable Redis, and
    enqueueing would hold the request up; beat's evaluation covers those events.
    """
    records = [TokenEventRecord.from_dict(vars(event)) for event in events]
    _partitions_ready(records)
    with transaction.atomic():
        inserted = _store(records).inserted
    if inserted and not settings.USE_REDIS:
        transaction.on_commit(lambda: _stored_announce(records, inserted))
    return inserted


def retention_cutoff() -> datetime:
    """Events before this moment are not kept: midnight UTC, KEYWARD_EVENT_RETENTION_DAYS
    days before today (so a day's partition is dropped whole)."""
    today = timezone.now().astimezone(UTC).date()
    return day_start(today - timedelta(days=settings.KEYWARD_EVENT_RETENTION_DAYS))


def _window(records: list[TokenEventRecord]) -> tuple[list[TokenEventRecord], int, int]:
    """(records inside the retention window, how many too old, how many too new)."""
    oldest = retention_cutoff().timestamp()
    newest = (timezone.now() + FUTURE_LIMIT).timestamp()
    kept = [r for r in records if oldest <= r.occurred_at <= newest]
    too_old = sum(1 for r in records if r.occurred_at < oldest)
    return kept, too_old, len(records) - len(kept) - too_old


def _store(records: list[TokenEventRecord]) -> StoreCounts:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Shared: stores run side by side; retention's exclusive lock waits for them,
            # and they for it. The window is decided under the lock, so no partition it
            # keeps can be dropped before this transaction commits (analytics/partitions.py).
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [PARTITION_LOCK])
    kept, too_old, too_new = _window(records)
    if too_old or too_new:
        logger.warning(
            "token events: %d older than the retention window, %d in the future, not stored",
            too_old,
            too_new,
        )
    unique = list({record.id: record for record in kept}.values())
    inserted = 0
    if unique and connection.vendor == "postgresql":
        inserted = _records_copy(unique)
    elif unique:
        new = _records_bulk_create(unique)
        _last_used_update_orm(unique)
        rollups_write(rollups_of(new))
        inserted = len(new)
    return StoreCounts(
        inserted=inserted,
        duplicates=len(kept) - inserted,
        too_old=too_old,
        too_new=too_new,
    )


def _partitions_ready(records: list[TokenEventRecord]) -> None:
    """PostgreSQL: create the day partitions the records need and lack (inside the
    retention window), in a transaction of their own before the batch's. DDL on the
    partitioned table locks it whole, so it is kept out of the (longer) insert, and
    creating ahead (the beat task) makes it rare."""
    if connection.vendor != "postgresql" or not records:
        return
    kept, _too_old, _too_new = _window(records)
    days = {datetime.fromtimestamp(record.occurred_at, tz=UTC).date() for record in kept}
    with connection.cursor() as cursor:
        if days <= partitions_existing(cursor):
            return
        with transaction.atomic():
            partitions_create(cursor, days)


def record_as_model(record: TokenEventRecord) -> TokenEvent:
    return TokenEvent(**dict(zip(COLUMNS, record.as_row(), strict=True)))


# --- PostgreSQL ---------------------------------------------------------------------

_STAGE_TABLE = "keyward_token_event_batch"
_TABLE = TokenEvent._meta.db_table
_COLUMN_LIST = ", ".join(COLUMNS)


# Wider than any event's time: the rebuild statements take a range, the batch is all of it.
_ALL_TIME = (datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC))


def _records_copy(records: list[TokenEventRecord]) -> int:
    """Store a batch and add what was new (only that: the rollups may count nothing twice)
    to the rollups; returns how many were inserted.

    1. COPY into a temporary table; delete from it the ids already stored (one primary
       key probe each).
    2. COPY what is left into the event table: COPY writes rows in batches (one WAL
       record per page, not per row), about twice as fast as INSERT … SELECT here.
       A writer storing some of the same ids in between (the drain and a log ingestion)
       makes it fail on the primary key: then, back at a savepoint, INSERT … SELECT … ON
       CONFLICT DO NOTHING RETURNING id, and the rows not inserted leave the temporary
       table.
    3. last_used and the rollups from the temporary table (analytics.rollups).
    """
    rows = [record.as_row() for record in records]
    with connection.cursor() as cursor:
        # Dropped below, not only ON COMMIT: a caller's transaction may store twice.
        cursor.execute(
            f"CREATE TEMPORARY TABLE {_STAGE_TABLE} (LIKE {_TABLE}) ON COMMIT DROP"  # noqa: S608
        )
        with cursor.copy(f"COPY {_STAGE_TABLE} ({_COLUMN_LIST}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"DELETE FROM {_STAGE_TABLE} AS s USING {_TABLE} AS e "  # noqa: S608
            "WHERE e.occurred_at = s.occurred_at AND e.id = s.id RETURNING s.id"
        )
        stored = {row[0] for row in cursor.fetchall()}
        inserted = _rows_insert(cursor, [row for row in rows if row[0] not in stored])
        _last_used_update_sql(cursor)
        rollups_rebuild_sql(start=_ALL_TIME[0], end=_ALL_TIME[1], table=_STAGE_TABLE)
        cursor.execute(f"DROP TABLE {_STAGE_TABLE}")
    return inserted


def _rows_insert(cursor, rows: list[tuple]) -> int:
    """Steps 2 of _records_copy: the rows staged and not stored yet into the event table."""
    if not rows:
        return 0
    try:
        with (
            transaction.atomic(),
            cursor.copy(f"COPY {_TABLE} ({_COLUMN_LIST}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return len(rows)
    except (IntegrityError, psycopg.errors.UniqueViolation):
        logger.info("token events: ids stored meanwhile by another writer; inserting the rest")
    cursor.execute(
        f"INSERT INTO {_TABLE} ({_COLUMN_LIST}) "  # noqa: S608
        f"SELECT {_COLUMN_LIST} FROM {_STAGE_TABLE} "
        "ON CONFLICT (occurred_at, id) DO NOTHING RETURNING id"
    )
    inserted = [row[0] for row in cursor.fetchall()]
    cursor.execute(
        f"DELETE FROM {_STAGE_TABLE} WHERE NOT (id = ANY(%s))",  # noqa: S608
        [inserted],
    )
    return len(inserted)


def _last_used_update_sql(cursor) -> None:
    """last_used of secrets and clients from the staged batch, two statements.

    Secrets: any successful request the secret authenticated. Clients: successful token
    requests only (Client.last_used_at is "last successful token"). Only ever forward, so
    re-writing a batch or writing batches out of order is harmless. Only Keyward's own
    events count: another service's client of the same name is not this client.
    """
    secret_table = ClientSecret._meta.db_table
    client_table = Client._meta.db_table
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


# --- Other databases (SQLite in embedded mode) -------------------------------------------


def _records_bulk_create(records: list[TokenEventRecord]) -> list[TokenEventRecord]:
    """bulk_create of the records whose ids are not stored yet; returns them."""
    ids = [uuid.UUID(record.id) for record in records]
    present = {i.hex for i in TokenEvent.objects.filter(id__in=ids).values_list("id", flat=True)}
    new = [record for record in records if record.id not in present]
    TokenEvent.objects.bulk_create([record_as_model(r) for r in new], batch_size=500)
    return new


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


# --- Reads for the apps below analytics (through audit.events.event_store) ----------------


def client_recent_token_events(*, client_id: str, limit: int = 20) -> list[TokenEvent]:
    """The latest events naming `client_id` (any source), newest first; the
    (client_id, occurred_at) index."""
    return list(TokenEvent.objects.filter(client_id=client_id).order_by("-occurred_at")[:limit])


@dataclass(frozen=True)
class SecretUses:
    count: int
    first_at: datetime
    last_at: datetime
    last_ip: str | None


def secret_uses_since(*, secret_ids: list[int], since: datetime) -> dict[int, SecretUses]:
    """Per secret, its successful uses at or after `since`: how many, the first and the
    last (with its address). A GROUP BY over the (secret_id, occurred_at) index, then one
    lookup per secret used (a client has a handful)."""
    uses = TokenEvent.objects.filter(
        secret_id__in=secret_ids, outcome=TokenEvent.Outcome.SUCCESS, occurred_at__gte=since
    )
    rows = (
        uses.values("secret_id")
        .annotate(n=Count("id"), first=Min("occurred_at"), last=Max("occurred_at"))
        .order_by()
    )
    return {
        row["secret_id"]: SecretUses(
            row["n"],
            row["first"],
            row["last"],
            uses.filter(secret_id=row["secret_id"], occurred_at=row["last"])
            .values_list("source_ip", flat=True)
            .first(),
        )
        for row in rows
    }
