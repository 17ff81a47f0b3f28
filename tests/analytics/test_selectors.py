"""The chart reads (analytics/selectors.py), over rollups written by the store."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

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


class TestDaySeries:
    def test_whole_days_read_the_day_totals_and_count_the_same(self):
        # Every client together, steps of days from a midnight: summed from TrafficDayTotal,
        # equal to the hours it replaces.
        midnight = NOW.replace(hour=0, minute=0)
        token_events_write(
            [event(midnight - timedelta(hours=h, minutes=7)) for h in (1, 5, 30, 50)]
            + [event(max(midnight, NOW - timedelta(minutes=1)), reason="bad_secret")]
        )
        span = {"start": midnight - timedelta(days=3), "end": NOW + timedelta(minutes=1)}
        by_days = selectors.traffic_series(**span, step=timedelta(days=1))
        by_hours = selectors.traffic_series(**span, step=timedelta(hours=1))
        assert [(p.successes, p.failures) for p in by_days] == [(1, 0), (1, 0), (2, 0), (0, 1)]
        assert sum(p.successes for p in by_hours) == 4
        assert sum(p.failures for p in by_hours) == 1


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


class TestPrunedTopLists:
    """Over PRUNED_FROM, PostgreSQL sums exactly only the clients and networks that can
    still win: the lists must be those of summing every one of them, for any range."""

    @pytest.fixture
    def skewed(self):
        # A few busy clients and networks, many quiet ones, over three days.
        rng = random.Random(7)
        now = datetime.now(UTC)
        records = []
        for _ in range(600):
            index = int(40 * rng.random() ** 3)
            failed = rng.random() < 0.3
            records.append(
                event(
                    now - timedelta(minutes=rng.randrange(3, 3 * 24 * 60)),
                    client_id=f"client-{index}",
                    reason=rng.choice(["bad_secret", "rate_limited"]) if failed else "ok",
                    ip=f"198.51.{index % 7}.{rng.randrange(1, 250)}",
                    source="okta" if index % 5 == 0 else "keyward",
                )
            )
        token_events_write(records)
        return now, records

    def test_they_equal_the_lists_of_every_client_and_network(self, skewed):
        if connection.vendor != "postgresql":
            pytest.skip("pruned on PostgreSQL only")
        now, records = skewed
        ranges = [
            (now - timedelta(hours=24), now + timedelta(minutes=1)),
            (now - timedelta(days=2, minutes=7), now - timedelta(hours=5)),
            (now - timedelta(days=30), now + timedelta(minutes=1)),
            (now - timedelta(hours=7), now - timedelta(minutes=30)),
        ]
        for start, end in ranges:
            for source in (None, "okta"):
                for limit in (10, 3):
                    span = {"start": start, "end": end, "limit": limit, "source": source}
                    assert selectors.client_tops(**span) == _summed_tops(**span)
                    assert selectors.top_failing_networks(**span) == _summed_networks(span)

    def test_the_top_clients_are_a_recount(self, skewed):
        now, records = skewed
        start, end = now - timedelta(hours=30), now + timedelta(minutes=1)
        totals: dict[str, list[int]] = {}
        for r in records:
            if start.replace(second=0, microsecond=0).timestamp() <= r.occurred_at:
                counts = totals.setdefault(r.client_id, [0, 0])
                counts[0] += 1
                counts[1] += r.outcome == "failure"
        ranked = sorted(totals.items(), key=lambda item: (-item[1][0], item[0]))[:10]
        by_requests, _by_failures = selectors.client_tops(start=start, end=end)
        assert [(c.client_id, c.requests, c.failures) for c in by_requests] == [
            (client_id, n, f) for client_id, (n, f) in ranked
        ]


def _summed_tops(*, start, end, limit, source):
    tops = {"n": [], "f": []}
    for which, client_id, n, f in selectors._client_tops_summed(start, end, limit, source):
        tops[which].append(selectors.ClientTraffic(client_id, n, f))
    return tops["n"], tops["f"]


def _summed_networks(span):
    never = timedelta(days=100_000)
    pruned_from, selectors.PRUNED_FROM = selectors.PRUNED_FROM, never
    try:
        return selectors.top_failing_networks(**span)
    finally:
        selectors.PRUNED_FROM = pruned_from
