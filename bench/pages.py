"""Server time of the console's analytics pages on a seeded database: the overview, a
client page with its activity block, the chart JSON, and the explorer's first and 100th
page.

    DATABASE_URL=postgres://…/keyward_bench .venv/bin/python bench/pages.py [--rounds 30]
        [--queries]

Seed the database first (`manage.py seed_traffic --clients 10000 --events 10000000`, see
bench/README.md). Like bench/explorer.py (whose helpers it uses) each request goes through
Django's test client in this process, logged in as the `bench-explorer` viewer: the time is
the server's whole answer (middleware, queries, templates) without a network; 3 warm-up
requests, then `--rounds` timed ones; p50 and p95 per page, MET/MISS against 150 ms at p95.

The client page is timed as the browser loads it: the page, then its activity block
(`analytics:client_activity`, fetched by htmx), the two summed per round; for the busiest
client of the last 7 days and for a median one. `--queries` prints, per page, its SQL
statements' count and the three slowest (one extra, untimed round).

The overview's traffic numbers and its chart series are cached for 30 s (the poll
interval; analytics/activity.py) and beat recomputes them every 20 s
(`warm-overview-cache`). Each page is timed twice: `cold`, with that cache off (every
request computes from the rollups: what a viewer waits for when the warmer has not run
for the current window yet, or beat is down), and `warm`, with it on (what the warmer
gives most requests). Pages without a cached part show the same figure twice, give or
take noise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyward.settings")

import django  # noqa: E402

django.setup()

from django.core.cache.backends.dummy import DummyCache  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Sum  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from analytics import activity  # noqa: E402
from analytics.models import TrafficHour  # noqa: E402
from bench.explorer import TARGET_MS, _estimate, deep_cursor, p95, viewer_login  # noqa: E402
from clients.models import Client as OAuthClient  # noqa: E402

ROUNDS = 30


def timed(fetch: Callable[[], None], rounds: int) -> list[float]:
    for _ in range(3):
        fetch()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fetch()
        times.append((time.perf_counter() - start) * 1000)
    return times


def getter(browser: Client, *requests: tuple[str, dict, dict]) -> Callable[[], None]:
    """Fetches each (url, params, headers) in turn and checks each answered 200."""

    def fetch() -> None:
        for url, params, headers in requests:
            response = browser.get(url, params, **headers)
            assert response.status_code == 200, (url, params, response.status_code)

    return fetch


def busiest_and_median_client() -> tuple[str, str]:
    """Among registered clients with traffic in the last 7 days: the busiest and the median
    one (setup, not timed)."""
    since = timezone.now() - timedelta(days=7)
    rows = list(
        TrafficHour.objects.filter(
            bucket__gte=since, client_id__in=OAuthClient.objects.values("client_id")
        )
        .values("client_id")
        .annotate(n=Sum("count"))
        .order_by("-n")
        .values_list("client_id", flat=True)
    )
    if not rows:
        sys.exit("No client traffic in the last 7 days: seed first (see bench/README.md).")
    return rows[0], rows[len(rows) // 2]


def scenarios(browser_client_ids: tuple[str, str]) -> list[tuple[str, list]]:
    overview = reverse("dashboard:overview")
    chart = reverse("analytics:traffic_json")
    htmx = {"HTTP_HX_REQUEST": "true"}
    pages = [
        (f"overview range={key}", [(overview, {"range": key}, {})])
        for key in ("1h", "24h", "7d", "30d")
    ]
    pages += [
        (
            "overview poll (24 h tables)",
            [(overview, {"range": "24h"}, htmx | {"HTTP_HX_TARGET": "traffic-tables"})],
        ),
        ("chart JSON 24 h, 1200 px", [(chart, {"range": "24h", "width": "1200"}, {})]),
        ("chart JSON 30 d, 1200 px", [(chart, {"range": "30d", "width": "1200"}, {})]),
    ]
    for label, client_id in zip(("busiest", "median"), browser_client_ids, strict=True):
        detail = reverse("clients:detail", args=[client_id])
        activity = reverse("analytics:client_activity", args=[client_id])
        pages.append(
            (f"client page + activity ({label})", [(detail, {}, {}), (activity, {}, htmx)])
        )
        if label == "busiest":
            pages.append(("  client page alone (busiest)", [(detail, {}, {})]))
            pages.append(("  activity block alone (busiest)", [(activity, {}, htmx)]))
    events = reverse("analytics:events")
    cursor, deep = deep_cursor({})
    pages.append(("explorer page 1", [(events, {}, {})]))
    if cursor:
        pages.append((f"explorer page {deep}", [(events, {"before": cursor}, {})]))
    return pages


def query_report(fetch: Callable[[], None]) -> str:
    """The statement count and the three slowest statements of one run of `fetch`."""
    seen: list[tuple[float, str]] = []

    def record(execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            seen.append(((time.perf_counter() - start) * 1000, sql))

    with connection.execute_wrapper(record):
        fetch()
    slowest = sorted(seen, reverse=True)[:3]
    lines = [f"      {len(seen)} statements, {sum(t for t, _ in seen):.1f} ms in SQL"]
    lines += [f"      {ms:7.1f} ms  {' '.join(sql.split())[:150]}" for ms, sql in slowest]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="timed rounds per page")
    parser.add_argument("--queries", action="store_true", help="slowest statements per page")
    options = parser.parse_args()
    print(f"Events: ~{_estimate():,} ({connection.vendor}); {options.rounds} rounds per page\n")
    browser = viewer_login()
    worst = {"cold": 0.0, "warm": 0.0}
    shared = activity.cache
    nothing_kept = DummyCache("bench-cold", {})  # get_or_set computes, keeps nothing
    print(f"{'page':<36} {'cold p50':>9} {'cold p95':>9} {'warm p50':>9} {'warm p95':>9}  (ms)")
    for name, requests in scenarios(busiest_and_median_client()):
        fetch = getter(browser, *requests)
        figures = []
        for mode, cache in (("cold", nothing_kept), ("warm", shared)):
            activity.cache = cache
            times = timed(fetch, options.rounds)
            worst[mode] = max(worst[mode], p95(times))
            figures += [statistics.median(times), p95(times)]
        print(f"{name:<36} " + " ".join(f"{figure:9.1f}" for figure in figures))
        if options.queries:
            activity.cache = nothing_kept
            print(query_report(fetch))
    meaning = {
        "cold": "every request computes from the rollups",
        "warm": "the overview's numbers from the cache, as beat's warm-overview-cache keeps them",
    }
    for mode, value in worst.items():
        verdict = "MET" if value <= TARGET_MS else "MISS"
        print(
            f"Worst p95 {mode} ({meaning[mode]}): {value:.1f} ms; "
            f"target ≤ {TARGET_MS} ms: {verdict}"
        )


if __name__ == "__main__":
    main()
