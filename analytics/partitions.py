"""Day partitions of the token-event table on PostgreSQL.

The table is partitioned by RANGE on occurred_at, one partition per UTC day, named
`analytics_tokenevent_pYYYYMMDD`. Creating and dropping partitions is DDL on the parent;
both run under one transaction-level advisory lock (`PARTITION_LOCK`), which the store
also takes, shared, around each insert (see analytics/store.py): so a partition is never
dropped while a batch that passed the retention check is being written into it, and two
processes never race to create the same partition.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

PARENT = "analytics_tokenevent"
# An arbitrary constant, the key of pg_advisory_xact_lock for partition DDL.
PARTITION_LOCK = 7_356_210_011
_NAME = re.compile(rf"^{PARENT}_p(\d{{8}})$")


def partition_name(day: date) -> str:
    return f"{PARENT}_p{day:%Y%m%d}"


def day_start(day: date) -> datetime:
    """Midnight UTC of `day`."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def partitions_existing(cursor) -> set[date]:
    """The days that have a partition."""
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass",
        [PARENT],
    )
    days = set()
    for (name,) in cursor.fetchall():
        match = _NAME.match(name)
        if match:
            days.add(datetime.strptime(match.group(1), "%Y%m%d").date())
    return days


def partitions_create(cursor, days) -> list[date]:
    """Create the partitions of `days` that are missing; returns the days created.
    Call inside a transaction: it takes the partition lock."""
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITION_LOCK])
    missing = sorted(set(days) - partitions_existing(cursor))
    for day in missing:
        # Literals, not parameters: DDL takes no bind parameters.
        cursor.execute(
            f"CREATE TABLE {partition_name(day)} PARTITION OF {PARENT} "
            f"FOR VALUES FROM ('{day.isoformat()} 00:00+00') "
            f"TO ('{(day + timedelta(days=1)).isoformat()} 00:00+00')"
        )
    return missing


def partitions_drop_before(cursor, day: date) -> list[date]:
    """Drop every partition of a day before `day`; returns the days dropped. Call inside a
    transaction that holds the partition lock."""
    dropped = sorted(d for d in partitions_existing(cursor) if d < day)
    for old in dropped:
        cursor.execute(f"DROP TABLE {partition_name(old)}")
    return dropped
