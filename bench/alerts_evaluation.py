"""How long one detection run takes, with and without a large history of old events.

    DATABASE_URL=postgres://… .venv/bin/python -m bench.alerts_evaluation [--history 1000000]

PostgreSQL only (it fills the table with generate_series). Adds `--recent` events of the
last hour (normal traffic plus one brute force), times detections_evaluate, then adds
`--history` events spread over the previous 30 days and times it again: the run reads only
its windows, so the second figure should match the first. Leaves the rows behind; point it
at a scratch database.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyward.settings")
django.setup()

from django.db import connection  # noqa: E402

from alerts.evaluation import detections_evaluate  # noqa: E402
from alerts.models import Alert  # noqa: E402

INSERT = """
INSERT INTO audit_tokenevent (id, occurred_at, endpoint, client_id, client_known, outcome,
    reason, source_ip, user_agent, scopes_requested, scopes_granted, jti, status_code,
    duration_ms, source)
SELECT gen_random_uuid(), now() - (random() * %(span)s) * interval '1 second', 'token',
    'client-' || (n %% 1000), true,
    CASE WHEN n %% 50 = 0 THEN 'failure' ELSE 'success' END,
    CASE WHEN n %% 50 = 0 THEN 'bad_secret' ELSE 'ok' END,
    ('10.' || (n %% 200) || '.' || (n %% 250) || '.1')::inet, '', 'orders:read', '', '', 200, 1,
    'keyward'
FROM generate_series(1, %(rows)s) AS n
"""


def fill(rows: int, *, older_than: int, span: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            INSERT.replace("now() -", f"now() - interval '{older_than} seconds' -"),
            {"rows": rows, "span": span},
        )
        cursor.execute("ANALYZE audit_tokenevent")


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
        cursor.execute("SELECT count(*) FROM audit_tokenevent")
        total = cursor.fetchone()[0]
    print(f"recent events (last hour): {args.recent:,}; total events: {total:,}")
    print(
        f"detections_evaluate median of 5: {before:.0f} ms without history, "
        f"{after:.0f} ms with {args.history:,} older events"
    )
    print(f"alerts: {Alert.objects.count()}")


if __name__ == "__main__":
    main()
