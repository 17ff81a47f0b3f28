"""Rollups equal a recount of the raw events, however the events arrive.

Property-based: hypothesis draws events (clients, sources, outcomes, IPv4/IPv6 addresses,
scopes, times over three days), then ingests them through the store in several batches,
shuffled and with duplicates inside and across batches. Afterwards every rollup table must
equal a recount from the raw rows, computed here independently; and the database's own
rebuild (rollups_rebuild, which the store itself runs on each batch's inserted rows on
PostgreSQL, and the seeding command on each day it loads) and the in-memory count (the
embedded SQLite path, and the simulator's backfill) must give the same tables.
"""

from __future__ import annotations

import ipaddress
import random
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.models import (
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
)
from analytics.rollups import rollups_of, rollups_rebuild, rollups_write
from analytics.store import token_events_store
from audit.events import TokenEventRecord

pytestmark = pytest.mark.django_db(transaction=True)

ROLLUPS = (
    TrafficMinute,
    TrafficHour,
    TrafficMinuteTotal,
    TrafficHourTotal,
    TrafficDayTotal,
    ClientDay,
    SourceNetwork,
    NetworkFailureHour,
    NetworkFailureDay,
    ScopeUsageHour,
    ScopeExerciseHour,
)
NOW = time.time()
OUTCOMES = [
    ("success", "ok", 200),
    ("failure", "bad_secret", 401),
    ("failure", "unknown_client", 401),
    ("failure", "rate_limited", 429),
    ("failure", "client_not_found", 401),  # another service's code, kept verbatim
]
ADDRESSES = [
    None,
    "203.0.113.7",
    "203.0.113.200",
    "198.51.100.1",
    "2001:db8:1:2::1",
    "2001:db8:1:ffff::9",
    "2001:db8:2::1",
]
SCOPES = ["", "orders:read", "orders:read orders:write", "  billing  orders:read"]


@st.composite
def events(draw) -> TokenEventRecord:
    outcome, reason, status = draw(st.sampled_from(OUTCOMES))
    granted = draw(st.sampled_from(SCOPES)) if outcome == "success" else ""
    return TokenEventRecord(
        id=uuid.UUID(int=draw(st.integers(0, 2**128 - 1))).hex,
        # Three days back, to the microsecond: buckets of every size, crossing days.
        occurred_at=round(NOW - draw(st.floats(0, 3 * 86400)), 6),
        endpoint=draw(st.sampled_from(["token", "token", "introspect", "revoke"])),
        client_id=draw(st.sampled_from(["billing", "reports", "", "ghost"])),
        outcome=outcome,
        reason=reason,
        source_ip=draw(st.sampled_from(ADDRESSES)),
        scopes_requested=draw(st.sampled_from(SCOPES)),
        scopes_granted=granted,
        status_code=status,
        source=draw(st.sampled_from(["keyward", "keycloak", "okta"])),
        # Set on introspection answers; drawn for every endpoint, which only introspection
        # may count.
        subject_client_id=draw(st.sampled_from(["", "billing", "reports"])),
    )


def _reset() -> None:
    with connection.cursor() as cursor:
        for model in (TokenEvent, *ROLLUPS):
            cursor.execute(f"DELETE FROM {model._meta.db_table}")  # noqa: S608


def _network(ip: str) -> str:
    prefix = 24 if ipaddress.ip_address(ip).version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def _floor(moment: datetime, seconds: int) -> datetime:
    return datetime.fromtimestamp(int(moment.timestamp() // seconds) * seconds, tz=UTC)


def recount() -> dict:
    """Every rollup, computed from the raw rows with nothing from analytics.rollups."""
    minute, hour, failing, failing_days = Counter(), Counter(), Counter(), Counter()
    minute_total, hour_total, day_total = Counter(), Counter(), Counter()
    days: dict = {}
    networks: dict = {}
    scopes: Counter = Counter()
    exercises: Counter = Counter()
    for e in TokenEvent.objects.all():
        what = (e.endpoint, e.outcome, e.reason, e.source)
        minute[(_floor(e.occurred_at, 60), e.client_id, *what)] += 1
        minute_total[(_floor(e.occurred_at, 60), *what)] += 1
        at_hour = _floor(e.occurred_at, 3600)
        hour[(at_hour, e.client_id, *what)] += 1
        hour_total[(at_hour, *what)] += 1
        day_total[(_floor(e.occurred_at, 86400), *what)] += 1
        day = (_floor(e.occurred_at, 86400), e.client_id, e.source)
        n, failed, unknown, last = days.get(day, (0, 0, 0, e.occurred_at))
        days[day] = (
            n + 1,
            failed + (e.outcome == "failure"),
            unknown + (e.reason == "unknown_client"),
            max(last, e.occurred_at),
        )
        if e.source_ip:
            key = (e.client_id, e.source, _network(e.source_ip))
            first, last, n, failed = networks.get(key, (e.occurred_at, e.occurred_at, 0, 0))
            networks[key] = (
                min(first, e.occurred_at),
                max(last, e.occurred_at),
                n + 1,
                failed + (e.outcome == "failure"),
            )
            if e.outcome == "failure":
                failing[(at_hour, e.source, _network(e.source_ip))] += 1
                at_day = _floor(e.occurred_at, 86400)
                failing_days[(at_day, e.source, _network(e.source_ip))] += 1
        if e.endpoint == "introspect" and e.outcome == "success" and e.subject_client_id:
            for scope in [s for s in e.scopes_granted.split(" ") if s]:
                exercises[(at_hour, e.subject_client_id, scope, "introspection", e.client_id)] += 1
        if e.endpoint == "token":
            # Space-separated (RFC 6749 §3.3); doubled spaces make no scope.
            issued = [s for s in e.scopes_granted.split(" ") if s] if e.outcome == "success" else []
            for scope in [s for s in e.scopes_requested.split(" ") if s] or issued:
                scopes[(at_hour, e.client_id, e.source, scope, "requested")] += 1
            for scope in issued:
                scopes[(at_hour, e.client_id, e.source, scope, "issued")] += 1
    scope_rows: dict = {}
    for (*key, column), n in scopes.items():
        scope_rows.setdefault(tuple(key), {"requested": 0, "issued": 0})[column] = n
    return {
        "minute": dict(minute),
        "hour": dict(hour),
        "minute_total": dict(minute_total),
        "hour_total": dict(hour_total),
        "day_total": dict(day_total),
        "days": days,
        "networks": networks,
        "failing": dict(failing),
        "failing_days": dict(failing_days),
        "scopes": {k: (v["requested"], v["issued"]) for k, v in scope_rows.items()},
        "exercises": dict(exercises),
    }


def stored() -> dict:
    traffic = ("bucket", "client_id", "endpoint", "outcome", "reason", "source")
    total = ("bucket", "endpoint", "outcome", "reason", "source")
    return {
        "minute": {r[:-1]: r[-1] for r in TrafficMinute.objects.values_list(*traffic, "count")},
        "hour": {r[:-1]: r[-1] for r in TrafficHour.objects.values_list(*traffic, "count")},
        "minute_total": {
            r[:-1]: r[-1] for r in TrafficMinuteTotal.objects.values_list(*total, "count")
        },
        "hour_total": {
            r[:-1]: r[-1] for r in TrafficHourTotal.objects.values_list(*total, "count")
        },
        "day_total": {r[:-1]: r[-1] for r in TrafficDayTotal.objects.values_list(*total, "count")},
        "days": {
            r[:3]: r[3:]
            for r in ClientDay.objects.values_list(
                "bucket", "client_id", "source", "requests", "failures", "unknown", "last_seen"
            )
        },
        "networks": {
            r[:3]: r[3:]
            for r in SourceNetwork.objects.values_list(
                "client_id", "source", "network", "first_seen", "last_seen", "count", "failures"
            )
        },
        "failing": {
            r[:3]: r[3]
            for r in NetworkFailureHour.objects.values_list("bucket", "source", "network", "count")
        },
        "failing_days": {
            r[:3]: r[3]
            for r in NetworkFailureDay.objects.values_list("bucket", "source", "network", "count")
        },
        "scopes": {
            r[:4]: r[4:]
            for r in ScopeUsageHour.objects.values_list(
                "bucket", "client_id", "source", "scope", "requested", "issued"
            )
        },
        "exercises": {
            r[:5]: r[5]
            for r in ScopeExerciseHour.objects.values_list(
                "bucket", "client_id", "scope", "via", "reporter", "count"
            )
        },
    }


class TestRollupsEqualARecount:
    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        # An id comes with its time (analytics/models.py): re-sends are the same records.
        drawn=st.lists(events(), min_size=1, max_size=60, unique_by=lambda e: e.id),
        batches=st.integers(1, 5),
        duplicates=st.integers(0, 30),
        seed=st.integers(0, 2**32),
    )
    def test_it_holds_after_shuffled_duplicated_batches(self, drawn, batches, duplicates, seed):
        _reset()
        shuffler = random.Random(seed)
        # Re-sent events (a drain re-writing an unacknowledged batch, a log ingested twice):
        # the same records again, anywhere in the stream, also inside one batch.
        stream = drawn + [shuffler.choice(drawn) for _ in range(duplicates)]
        shuffler.shuffle(stream)
        cuts = sorted(shuffler.sample(range(1, len(stream) + 1), min(batches, len(stream))))
        inserted, start = 0, 0
        for cut in cuts:
            inserted += token_events_store(stream[start:cut])
            start = cut
        if start < len(stream):
            inserted += token_events_store(stream[start:])

        assert inserted == len({e.id for e in drawn}) == TokenEvent.objects.count()
        assert stored() == recount()

    @settings(
        max_examples=5,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(drawn=st.lists(events(), min_size=50, max_size=300, unique_by=lambda e: e.id))
    def test_the_database_rebuild_gives_the_same_rollups(self, drawn):
        _reset()
        token_events_store(drawn)
        expected = stored()
        _rollups_empty()
        rollups_rebuild(
            start=datetime(2000, 1, 1, tzinfo=UTC), end=datetime(2100, 1, 1, tzinfo=UTC)
        )
        assert stored() == expected == recount()

    @settings(
        max_examples=5,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(drawn=st.lists(events(), min_size=50, max_size=300, unique_by=lambda e: e.id))
    def test_the_in_memory_count_gives_the_same_rollups(self, drawn):
        _reset()
        token_events_store(drawn)
        expected = stored()
        _rollups_empty()
        # What the embedded (SQLite) store and the simulator's backfill write.
        for half in (drawn[::2], drawn[1::2]):
            rollups_write(rollups_of(half))
        assert stored() == expected == recount()


class TestRollupsRebuildAsARepair:
    def test_it_replaces_the_rollups_of_whole_days(self):
        _reset()
        day = datetime.fromtimestamp(NOW // 86400 * 86400, tz=UTC)
        token_events_store(
            [
                TokenEventRecord(
                    id=uuid.uuid4().hex,
                    occurred_at=day.timestamp() - 3600 + i * 300,
                    endpoint="token",
                    client_id="billing",
                    outcome="success",
                    reason="ok",
                    source_ip="203.0.113.7",
                    scopes_granted="orders:read",
                    status_code=200,
                )
                for i in range(24)
            ]
        )
        # A doubted table: counts doubled, a row lost.
        TrafficHour.objects.update(count=99)
        ClientDay.objects.filter(bucket=day).delete()
        rollups_rebuild(start=day - timedelta(days=1), end=day + timedelta(days=1), replace=True)
        assert stored() == recount()

    def test_it_needs_whole_days_to_replace(self):
        with pytest.raises(ValueError, match="midnight"):
            rollups_rebuild(
                start=datetime(2026, 1, 1, 5, tzinfo=UTC),
                end=datetime(2026, 1, 2, tzinfo=UTC),
                replace=True,
            )


def _rollups_empty() -> None:
    with connection.cursor() as cursor:
        for model in ROLLUPS:
            cursor.execute(f"DELETE FROM {model._meta.db_table}")  # noqa: S608
