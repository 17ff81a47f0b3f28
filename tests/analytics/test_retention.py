"""Retention of the event store (analytics/retention.py and the store's window)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections

from analytics.models import (
    ClientDay,
    NetworkFailureDay,
    NetworkFailureHour,
    SourceNetwork,
    TokenEvent,
    TrafficDayTotal,
    TrafficHour,
    TrafficHourTotal,
    TrafficMinute,
    TrafficMinuteTotal,
)
from analytics.partitions import partitions_existing
from analytics.retention import PARTITIONS_AHEAD, retention_apply
from analytics.store import retention_cutoff, token_events_store, token_events_store_counts
from audit.events import TokenEventRecord

pytestmark = pytest.mark.django_db(transaction=True)

TODAY = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


def event(days_ago: float, **fields) -> TokenEventRecord:
    return TokenEventRecord(
        id=uuid.uuid4().hex,
        occurred_at=(TODAY - timedelta(days=days_ago)).timestamp(),
        endpoint="token",
        **{
            "client_id": "billing",
            "outcome": "success",
            "reason": "ok",
            "source_ip": "203.0.113.7",
            "scopes_granted": "orders:read",
            "status_code": 200,
            **fields,
        },
    )


def partition_days() -> set:
    with connection.cursor() as cursor:
        return partitions_existing(cursor)


def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("partitions are PostgreSQL's")


class TestStoreWindow:
    def test_it_does_not_store_events_before_the_retention_window(self, settings):
        settings.KEYWARD_EVENT_RETENTION_DAYS = 30
        counts = token_events_store_counts([event(1), event(29), event(31), event(400), event(-3)])
        assert (counts.inserted, counts.too_old, counts.too_new) == (2, 2, 1)
        assert TokenEvent.objects.count() == 2
        # Nor counted in the rollups.
        assert sum(TrafficHour.objects.values_list("count", flat=True)) == 2

    def test_it_counts_duplicates(self):
        first = event(1)
        counts = token_events_store_counts([first, first, event(2)])
        assert (counts.inserted, counts.duplicates) == (2, 1)
        assert token_events_store_counts([first]).duplicates == 1

    def test_it_creates_a_missing_partition_for_an_old_day_within_retention(self):
        postgresql_only()
        day = (TODAY - timedelta(days=20)).date()
        assert day not in partition_days()
        assert token_events_store([event(20)]) == 1
        assert day in partition_days()


class TestRetentionTask:
    def test_it_drops_old_day_partitions_and_creates_the_next_days(self, settings):
        postgresql_only()
        settings.KEYWARD_EVENT_RETENTION_DAYS = 60
        token_events_store([event(50), event(40), event(10)])
        settings.KEYWARD_EVENT_RETENTION_DAYS = 30

        result = retention_apply()

        days = partition_days()
        assert min(days) >= retention_cutoff().date()
        assert {(TODAY - timedelta(days=n)).date() for n in (50, 40)} <= set(
            result.partitions_dropped
        )
        today = TODAY.date()
        assert {today + timedelta(days=n) for n in range(PARTITIONS_AHEAD + 1)} <= days
        assert TokenEvent.objects.count() == 1
        # Idempotent.
        assert retention_apply().partitions_dropped == []

    def test_it_deletes_old_rows_on_sqlite(self, settings):
        if connection.vendor == "postgresql":
            pytest.skip("SQLite's retention")
        settings.KEYWARD_EVENT_RETENTION_DAYS = 60
        token_events_store([event(50), event(10)])
        settings.KEYWARD_EVENT_RETENTION_DAYS = 30
        assert retention_apply().events_deleted == 1
        assert TokenEvent.objects.count() == 1

    def test_it_prunes_rollups_past_their_retention(self, settings):
        settings.KEYWARD_EVENT_RETENTION_DAYS = 500
        settings.KEYWARD_ROLLUP_RETENTION_DAYS = 500
        failed = {"outcome": "failure", "reason": "bad_secret", "status_code": 401}
        token_events_store(
            [event(450, client_id="old", **failed), event(40, **failed), event(1, **failed)]
        )
        settings.KEYWARD_EVENT_RETENTION_DAYS = 30
        settings.KEYWARD_ROLLUP_RETENTION_DAYS = 400

        retention_apply()

        # Minutes follow raw retention, hours, days and networks the rollup retention.
        assert TrafficMinute.objects.count() == TrafficMinuteTotal.objects.count() == 1
        assert TrafficHour.objects.count() == TrafficHourTotal.objects.count() == 2
        assert TrafficDayTotal.objects.count() == 2
        assert ClientDay.objects.count() == 2
        assert NetworkFailureHour.objects.count() == NetworkFailureDay.objects.count() == 2
        assert not SourceNetwork.objects.filter(client_id="old").exists()


class TestRetentionWhileIngesting:
    def test_dropping_partitions_while_ingesting_loses_no_row_of_the_kept_days(self, settings):
        """An ingesting thread stores batches spread over 45 days while retention shrinks
        from 60 to 30 days and runs again and again: every event of the kept days is
        stored, nothing fails, and no partition before the cutoff is left."""
        postgresql_only()
        settings.KEYWARD_EVENT_RETENTION_DAYS = 60
        token_events_store([event(day) for day in range(45)])  # partitions for 45 days
        sent: list[TokenEventRecord] = []
        errors: list[BaseException] = []
        stop = threading.Event()

        def ingest():
            try:
                n = 0
                while not stop.is_set() or n < 10:
                    batch = [event((n * 7 + i) % 45 + 0.01 * i) for i in range(200)]
                    token_events_store(batch)
                    sent.extend(batch)
                    n += 1
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                connections.close_all()

        worker = threading.Thread(target=ingest)
        worker.start()
        try:
            settings.KEYWARD_EVENT_RETENTION_DAYS = 30
            for _ in range(15):
                retention_apply()
        finally:
            stop.set()
            worker.join(timeout=120)
        retention_apply()

        assert not errors
        cutoff = retention_cutoff().timestamp()
        kept = {e.id for e in sent if e.occurred_at >= cutoff}
        assert kept
        stored = {i.hex for i in TokenEvent.objects.values_list("id", flat=True)}
        assert kept <= stored
        assert min(partition_days()) >= retention_cutoff().date()
