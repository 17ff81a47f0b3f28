"""Retention of the event store: the hourly beat task's work.

Raw events (PostgreSQL): whole day partitions before the retention cutoff are dropped
(DROP TABLE: instant, no dead rows, no vacuum debt, no long lock, unlike a bulk DELETE),
and the next PARTITIONS_AHEAD days' partitions are created, so the store rarely has to.
Both under the partition lock, exclusive, which waits for stores in flight (they hold it
shared) and which they wait for: a store decides which events are inside the window after
taking the lock, so a partition it writes into is never dropped under it.

Raw events (SQLite, embedded mode): one DELETE of the rows before the cutoff. There is no
partitioning in SQLite; the table is small (one developer's traffic), and SQLite has one
writer at a time anyway.

Rollups: rows older than their retention are deleted in small batches (ROLLUP_BATCH rows
per statement, each its own transaction), through the index that starts with the bucket
(last_seen for networks). Not partitions: rollups are orders of magnitude smaller than raw
events, a day of them is a few thousand to a few hundred thousand rows, and small
deletes keep every lock short while the drain upserts; partitioning them would also mean
more sets of partitions to manage. Per-minute rollups (by client and totals) are kept as
long as raw events (the charts read minutes only for ranges up to 48 h), the hourly ones,
the per-client days, scope usage and exercise and networks for
KEYWARD_ROLLUP_RETENTION_DAYS; usage-report batch ids (the endpoint's idempotency) for
USAGE_REPORT_IDS_KEPT.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from .models import (
    ClientDay,
    NetworkFailureDay,
    NetworkFailureHour,
    ScopeExerciseHour,
    ScopeUsageHour,
    SourceNetwork,
    TokenEvent,
    TrafficDayTotal,
    TrafficHour,
    TrafficHourTotal,
    TrafficMinute,
    TrafficMinuteTotal,
    UsageReport,
)
from .partitions import PARTITION_LOCK, partitions_create, partitions_drop_before
from .store import retention_cutoff
from .usage_reports import USAGE_REPORT_IDS_KEPT

logger = logging.getLogger(__name__)

PARTITIONS_AHEAD = 3
LOCK_TIMEOUT = "5s"
ROLLUP_BATCH = 5000


@dataclass(frozen=True)
class RetentionResult:
    partitions_dropped: list[date]
    partitions_created: list[date]
    events_deleted: int  # SQLite only
    rollups_deleted: int


def retention_apply() -> RetentionResult:
    """Apply both retentions now; idempotent."""
    dropped, created, deleted = _raw_events()
    pruned = _rollups_prune()
    result = RetentionResult(dropped, created, deleted, pruned)
    if dropped or created or deleted or pruned:
        logger.info(
            "event retention: %d partitions dropped, %d created, %d events and %d rollup "
            "rows deleted",
            len(dropped),
            len(created),
            deleted,
            pruned,
        )
    return result


def _raw_events() -> tuple[list[date], list[date], int]:
    if connection.vendor != "postgresql":
        count, _ = TokenEvent.objects.filter(occurred_at__lt=retention_cutoff()).delete()
        return [], [], count
    with transaction.atomic(), connection.cursor() as cursor:
        # Dropping a partition locks the parent table: give up after LOCK_TIMEOUT rather
        # than queue every reader behind a long explorer query; the next run retries.
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITION_LOCK])
        # Decided under the lock (see the module's docstring).
        cutoff = retention_cutoff()
        dropped = partitions_drop_before(cursor, cutoff.date())
        today = timezone.now().astimezone(UTC).date()
        created = partitions_create(
            cursor, [today + timedelta(days=n) for n in range(PARTITIONS_AHEAD + 1)]
        )
    return dropped, created, 0


def _rollups_prune() -> int:
    now = timezone.now()
    raw_cutoff = retention_cutoff()
    rollup_cutoff = now - timedelta(days=settings.KEYWARD_ROLLUP_RETENTION_DAYS)
    return (
        _delete_in_batches(TrafficMinute, "bucket", raw_cutoff)
        + _delete_in_batches(TrafficMinuteTotal, "bucket", raw_cutoff)
        + _delete_in_batches(TrafficHour, "bucket", rollup_cutoff)
        + _delete_in_batches(TrafficHourTotal, "bucket", rollup_cutoff)
        + _delete_in_batches(TrafficDayTotal, "bucket", rollup_cutoff)
        + _delete_in_batches(ClientDay, "bucket", rollup_cutoff)
        + _delete_in_batches(NetworkFailureHour, "bucket", rollup_cutoff)
        + _delete_in_batches(NetworkFailureDay, "bucket", rollup_cutoff)
        + _delete_in_batches(ScopeUsageHour, "bucket", rollup_cutoff)
        + _delete_in_batches(ScopeExerciseHour, "bucket", rollup_cutoff)
        + _delete_in_batches(UsageReport, "received_at", now - USAGE_REPORT_IDS_KEPT)
        + _delete_in_batches(SourceNetwork, "last_seen", rollup_cutoff)
    )


def _delete_in_batches(model, column: str, cutoff: datetime) -> int:
    deleted = 0
    while True:
        ids = list(
            model.objects.filter(**{f"{column}__lt": cutoff})
            .order_by(column)
            .values_list("pk", flat=True)[:ROLLUP_BATCH]
        )
        if not ids:
            return deleted
        with transaction.atomic():
            deleted += model.objects.filter(pk__in=ids).delete()[0]
