"""The chart reads (analytics/selectors.py), over rollups written by the store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from analytics import selectors
from analytics.store import token_events_write
from audit.events import TokenEventRecord

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
HOUR_AGO = NOW - timedelta(hours=1)


def event(at: datetime, *, client_id="billing", reason="ok", ip="203.0.113.7", **fields):
    outcome = "success" if reason == "ok" else "failure"
    return TokenEventRecord(
        id=uuid.uuid4().hex,
        occurred_at=at.timestamp(),
        endpoint="token",
        client_id=client_id,
        outcome=outcome,
        reason=reason,
        source_ip=ip,
        status_code=200 if outcome == "success" else 401,
        **fields,
    )


@pytest.fixture
def traffic():
    token_events_write(
        [
            event(HOUR_AGO + timedelta(seconds=5)),
            event(HOUR_AGO + timedelta(seconds=50), scopes_granted="orders:read orders:write"),
            event(HOUR_AGO + timedelta(minutes=2), reason="bad_secret", ip="198.51.100.9"),
            event(HOUR_AGO + timedelta(minutes=2), reason="bad_secret", ip="198.51.100.10"),
            event(HOUR_AGO + timedelta(minutes=3), client_id="ghost", reason="unknown_client"),
            event(
                HOUR_AGO + timedelta(minutes=4),
                client_id="ghost",
                reason="unknown_client",
                source="okta",
                ip="2001:db8:5:1::1",
            ),
            event(
                HOUR_AGO + timedelta(minutes=4),
                client_id="reports",
                scopes_requested="reports:read",
                scopes_granted="reports:read",
            ),
        ]
    )


class TestTrafficSeries:
    def test_it_counts_per_step_with_zeros_between(self, traffic):
        series = selectors.traffic_series(
            start=HOUR_AGO, end=HOUR_AGO + timedelta(minutes=6), step=timedelta(minutes=1)
        )
        assert [(p.successes, p.failures) for p in series] == [
            (2, 0),
            (0, 0),
            (0, 2),
            (0, 1),
            (1, 1),
            (0, 0),
        ]
        assert series[0].bucket == HOUR_AGO

    def test_it_filters_by_client_and_source(self, traffic):
        series = selectors.traffic_series(
            start=HOUR_AGO, end=NOW, step=timedelta(minutes=30), client_id="ghost", source="okta"
        )
        assert [(p.successes, p.failures) for p in series] == [(0, 1), (0, 0)]

    def test_it_filters_by_reason(self, traffic):
        series = selectors.traffic_series(
            start=HOUR_AGO, end=NOW, step=timedelta(minutes=30), reasons=["bad_secret"]
        )
        assert [(p.successes, p.failures) for p in series] == [(0, 2), (0, 0)]

    def test_it_counts_a_networks_failures_per_hour(self, traffic):
        this_hour = NOW.replace(minute=0)
        series = selectors.network_failure_series(
            network="198.51.100.0/24",
            start=this_hour - timedelta(hours=2),
            end=this_hour + timedelta(hours=1),
            step=timedelta(minutes=5),  # an hour at least: the rollup is hourly
        )
        assert len(series) == 3 and sum(p.failures for p in series) == 2
        assert series[0].bucket == this_hour - timedelta(hours=2)

    def test_it_reads_hours_for_hour_steps(self, traffic):
        this_hour = NOW.replace(minute=0)
        series = selectors.traffic_series(
            start=this_hour - timedelta(hours=3),
            end=this_hour + timedelta(hours=1),
            step=timedelta(hours=1),
        )
        assert sum(p.successes for p in series) == 3
        assert sum(p.failures for p in series) == 4
        assert [p.bucket for p in series] == [this_hour - timedelta(hours=n) for n in (3, 2, 1, 0)]


class TestBreakdowns:
    def test_it_ranks_failure_reasons(self, traffic):
        assert selectors.failure_reasons(start=HOUR_AGO, end=NOW) == [
            ("bad_secret", 2),
            ("unknown_client", 2),
        ]

    def test_it_ranks_clients_by_requests_and_by_failures(self, traffic):
        by_requests = selectors.top_clients(start=HOUR_AGO, end=NOW)
        assert [(c.client_id, c.requests, c.failures) for c in by_requests] == [
            ("billing", 4, 2),
            ("ghost", 2, 2),
            ("reports", 1, 0),
        ]
        by_failures = selectors.top_clients(start=HOUR_AGO, end=NOW, by="failures", limit=1)
        assert [c.client_id for c in by_failures] == ["billing"]

    def test_it_ranks_failing_networks(self, traffic):
        networks = selectors.top_failing_networks(
            start=NOW - timedelta(hours=2), end=NOW + timedelta(hours=1)
        )
        assert [(n.network, n.source, n.failures) for n in networks] == [
            ("198.51.100.0/24", "keyward", 2),
            ("2001:db8:5::/48", "okta", 1),
            ("203.0.113.0/24", "keyward", 1),
        ]

    def test_it_lists_unknown_client_ids_tried(self, traffic):
        unknown = selectors.unknown_client_ids(start=HOUR_AGO, end=NOW)
        assert [(u.client_id, u.source, u.attempts) for u in unknown] == [
            ("ghost", "keyward", 1),
            ("ghost", "okta", 1),
        ]


class TestClientReads:
    def test_it_lists_a_clients_networks_with_first_and_last_seen(self, traffic):
        networks = selectors.client_networks(client_id="billing")
        assert [(n.network, n.count, n.failures) for n in networks] == [
            ("198.51.100.0/24", 2, 2),
            ("203.0.113.0/24", 2, 0),
        ]
        assert networks[1].first_seen == HOUR_AGO + timedelta(seconds=5)
        assert networks[1].last_seen == HOUR_AGO + timedelta(seconds=50)

    def test_it_counts_scopes_requested_and_issued(self, traffic):
        window = {"start": NOW - timedelta(days=30), "end": NOW + timedelta(hours=1)}
        # Asked for no scope, got two: both count as requested.
        assert selectors.client_scope_usage(client_id="billing", **window) == [
            selectors.ScopeUse("orders:read", 1, 1),
            selectors.ScopeUse("orders:write", 1, 1),
        ]
        assert selectors.client_scope_usage(client_id="reports", **window) == [
            selectors.ScopeUse("reports:read", 1, 1)
        ]


class TestOverviewReads:
    def test_it_breaks_traffic_down_by_source_outcome_and_reason(self, traffic):
        rows = selectors.traffic_breakdown(start=HOUR_AGO, end=NOW)
        assert sorted(rows) == [
            ("keyward", "failure", "bad_secret", 2),
            ("keyward", "failure", "unknown_client", 1),
            ("keyward", "success", "ok", 3),
            ("okta", "failure", "unknown_client", 1),
        ]

    def test_it_totals_every_client_in_one_read(self, traffic):
        rows = selectors.client_totals(start=HOUR_AGO, end=NOW, source="keyward")
        assert sorted((c.client_id, c.requests, c.failures) for c in rows) == [
            ("billing", 4, 2),
            ("ghost", 1, 1),
            ("reports", 1, 0),
        ]

    def test_it_counts_clients_over_days_hours_and_minutes_alike(self):
        # Events over three days: a range reads whole days from ClientDay, the hours and
        # minutes at its edges from the per-client rollups; each must equal a recount.
        now = datetime.now(UTC)
        moments = [now - timedelta(minutes=m) for m in range(3, 3 * 24 * 60, 97)]
        token_events_write(
            [
                event(
                    at, client_id=f"c{i % 4}", reason=("ok", "bad_secret", "unknown_client")[i % 3]
                )
                for i, at in enumerate(moments)
            ]
        )
        ranges = [
            (now - timedelta(days=30), now + timedelta(minutes=1)),  # ends after now
            (now - timedelta(days=2, minutes=7), now - timedelta(hours=5)),  # in the past
            (now - timedelta(hours=26), now + timedelta(minutes=1)),
        ]
        for start, end in ranges:
            floor = selectors.HOUR if end - start > selectors.MINUTE_RANGE else selectors.MINUTE
            lo, hi = selectors._floor(start, floor), selectors._floor(end, floor)
            inside = [(i, at) for i, at in enumerate(moments) if lo <= at < hi]
            expected = {}
            for i, _at in inside:
                counts = expected.setdefault(f"c{i % 4}", [0, 0])
                counts[0] += 1
                counts[1] += i % 3 != 0
            got = selectors.client_totals(start=start, end=end)
            assert {c.client_id: [c.requests, c.failures] for c in got} == expected
            unknown = selectors.unknown_client_ids(start=start, end=end, limit=10)
            attempts = {
                f"c{k}": sum(1 for i, _ in inside if i % 4 == k and i % 3 == 2) for k in range(4)
            }
            assert {u.client_id: u.attempts for u in unknown} == {
                c: n for c, n in attempts.items() if n
            }
