"""Moving TokenEvent from audit to analytics keeps every row.

The test database is migrated back to the schema before the move (audit 0003, analytics 0001:
no event tables), filled through the models of that state, and migrated forward again. It runs on
the suite's database (PostgreSQL in bin/test, SQLite when DATABASE_URL is empty) and always
ends at the latest migrations, so the tests after it see the usual schema.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from analytics.models import TokenEvent
from analytics.partitions import partitions_existing

BEFORE_MOVE = [("audit", "0003_tokenevent_source"), ("analytics", "0001_ingestion_tokens")]
OLD_DAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

pytestmark = pytest.mark.migrations


def _migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)  # a fresh loader sees what is applied now
    executor.migrate(targets)
    return executor


def _latest():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def _tables() -> set[str]:
    return set(connection.introspection.table_names())


@pytest.fixture
def before_move(transactional_db):
    """Old models (apps of the pre-move state); the schema is the latest again afterwards."""
    executor = _migrate(BEFORE_MOVE)
    try:
        yield executor.loader.project_state(BEFORE_MOVE[0]).apps
    finally:
        _migrate(_latest())


def _old_events(apps) -> list[uuid.UUID]:
    OldEvent = apps.get_model("audit", "TokenEvent")
    ids = []
    for n, at in enumerate([OLD_DAY, OLD_DAY + timedelta(days=40), datetime.now(UTC)]):
        event = OldEvent.objects.create(
            occurred_at=at,
            endpoint="token",
            client_id=f"client-{n}",
            client_known=True,
            secret_id=n,
            outcome="failure",
            reason="bad_secret",
            source_ip="2001:db8::7" if n else "203.0.113.9",
            scopes_requested="orders:read",
            status_code=401,
            duration_ms=1.25,
            source="okta" if n == 1 else "keyward",
        )
        ids.append(event.pk)
    return ids


class TestMoveToAnalytics:
    def test_it_puts_the_table_back_under_audit_when_reversed(self, before_move):
        tables = _tables()
        assert "audit_tokenevent" in tables
        assert "analytics_tokenevent" not in tables

    def test_it_copies_every_row_with_its_fields(self, before_move):
        ids = _old_events(before_move)
        _migrate(_latest())

        tables = _tables()
        assert "analytics_tokenevent" in tables
        assert "audit_tokenevent" not in tables
        assert set(TokenEvent.objects.values_list("id", flat=True)) == set(ids)
        moved = TokenEvent.objects.get(client_id="client-1")
        assert (moved.occurred_at, moved.secret_id, moved.source) == (
            OLD_DAY + timedelta(days=40),
            1,
            "okta",
        )
        assert (moved.source_ip, moved.duration_ms, moved.reason) == (
            "2001:db8::7",
            1.25,
            "bad_secret",
        )

    def test_it_partitions_by_day_on_postgresql(self, before_move):
        if connection.vendor != "postgresql":
            pytest.skip("SQLite keeps a plain table")
        _old_events(before_move)
        _migrate(_latest())

        with connection.cursor() as cursor:
            days = partitions_existing(cursor)
        today = datetime.now(UTC).date()
        assert {OLD_DAY.date(), (OLD_DAY + timedelta(days=40)).date(), today} <= days
        assert today + timedelta(days=3) in days

    def test_it_copies_the_rows_back_when_reversed(self, transactional_db):
        _migrate(_latest())
        record_id = uuid.uuid4()
        TokenEvent.objects.create(
            id=record_id,
            occurred_at=datetime.now(UTC),
            endpoint="token",
            outcome="success",
            reason="ok",
            status_code=200,
        )
        executor = _migrate(BEFORE_MOVE)
        try:
            OldEvent = executor.loader.project_state(BEFORE_MOVE[0]).apps.get_model(
                "audit", "TokenEvent"
            )
            assert list(OldEvent.objects.values_list("id", flat=True)) == [record_id]
        finally:
            _migrate(_latest())
