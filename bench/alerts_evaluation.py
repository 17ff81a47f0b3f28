"""How long one detection run takes, with and without a large history of old events.

    DATABASE_URL=postgres://… .venv/bin/python -m bench.alerts_evaluation [--history 1000000]

PostgreSQL only (it fills the table with generate_series). Adds `--recent` events of the
last hour (normal traffic plus one brute force), times detections_evaluate, then adds
`--history` events spread over the previous 30 days and times it again: the run reads only
its windows, so the second figure should match the first. Leaves the rows behind; point it
at a scratch database. The rows bypass the store, so the rollups stay empty: this times the
rules that read recent raw events.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime, timedelta

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyward.settings")
django.setup()

from django.db import connection  # noqa: E402

from alerts.evaluation import detections_evaluate  # noqa: E402
from alerts.models import Alert  # noqa: E402
from analytics.models import TokenEvent  # noqa: E402
from analytics.partitions import partitions_create  # noqa: E402

TABLE = TokenEvent._meta.db_table

INSERT = """
INSERT INTO {table} (id, occurred_at, endpoint, client_id, client_known, outcome,
    reason, source_ip, user_agent, scopes_requested, scopes_granted, jti, status_code,
    duration_ms, source)
SELECT gen_random_uuid(), now() - (random() * %(span)s) * interval '1 second', 'token',
    'client-' || (n %% 1000), true,
    CASE WHEN n %% 50 = 0 THEN 'failure' ELSE 'success' END,
    CASE WHEN n %% 50 = 0 THEN 'bad_secret' ELSE 'ok' END,
    ('10.' || (n %% 200) || '.' || (n %% 250) || '.1')::inet, '', 'orders:read', '', '', 200, 1,
    'keyward'
FROM generate_series(1, %(rows)s) AS n
""".replace("{table}", TABLE)


def partitions_ready(days: int = 32) -> None:
    """The rows go straight into the day-partitioned table (not through the store, which
    would also build rollups): its partitions must exist first."""
    today = datetime.now(UTC).date()
    with connection.cursor() as cursor:
        partitions_create(cursor, {today - timedelta(days=n) for n in range(days)})


def fill(rows: int, *, older_than: int, span: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            INSERT.replace("now() -", f"now() - interval '{older_than} seconds' -"),
            {"rows": rows, "span": span},
        )
        cursor.execute(f"ANALYZE {TABLE}")


def timed(runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        detections_evaluate()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recent", type=int, default=50_000)
    parser.add_argument("--history", type=int, default=1_000_000)
    args = parser.parse_args()
    partitions_ready()
    fill(args.recent, older_than=0, span=3600)
    with connection.cursor() as cursor:  # one brute force, so a finding is raised each run
        cursor.execute(
            INSERT.replace("'client-' || (n %% 1000)", "'victim'").replace("n %% 50 = 0", "true"),
            {"rows": 40, "span": 60},
        )
    before = timed()
    fill(args.history, older_than=3600, span=30 * 86400)
    after = timed()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {TABLE}")  # noqa: S608
        total = cursor.fetchone()[0]
    print(f"recent events (last hour): {args.recent:,}; total events: {total:,}")
    print(
        f"detections_evaluate median of 5: {before:.0f} ms without history, "
        f"{after:.0f} ms with {args.history:,} older events"
    )
    print(f"alerts: {Alert.objects.count()}")


if __name__ == "__main__":
    main()
