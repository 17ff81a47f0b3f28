"""Server time of the events explorer's first and 100th page on a seeded database.

    DATABASE_URL=postgres://…/keyward_bench .venv/bin/python bench/explorer.py [--rounds 30]
        [--explain] [--plans]

Run it against a database already holding many events (`manage.py seed_traffic`, see
bench/README.md); it adds nothing but a `bench-explorer` viewer account to log in with.
For each filter the explorer offers it requests the newest page and the 100th page (the
cursor of row 4,950, found once beforehand) through Django's test client in this process,
so the time is the server's whole answer (middleware, the query, the template), without a
network. Prints p50 and p95 per page and MET/MISS against 150 ms at p95.

--explain also runs EXPLAIN (ANALYZE, BUFFERS) on each page's query (PostgreSQL) and
prints one line per plan: the indexes used, partitions touched, rows read and time; --plans
prints the whole plans.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyward.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Group, User  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402

from analytics.explorer import PAGE_SIZE, Cursor, events_filter, page_query  # noqa: E402
from analytics.forms import EventFilterForm  # noqa: E402
from analytics.models import TokenEvent  # noqa: E402

TARGET_MS = 150
DEEP_PAGE = 100
URL = reverse("analytics:events")


def scenarios() -> list[tuple[str, dict[str, str]]]:
    """The explorer's filters, with values taken from the newest events so each matches."""
    newest = TokenEvent.objects.order_by("-occurred_at", "-id").first()
    if newest is None:
        sys.exit("No events in this database: seed it first (see bench/README.md).")
    jti = (
        TokenEvent.objects.filter(occurred_at__lte=newest.occurred_at)
        .exclude(jti="")
        .order_by("-occurred_at")
        .values_list("jti", flat=True)
        .first()
    )
    octets = (newest.source_ip if "." in (newest.source_ip or "") else "10.0.0.1").split(".")
    wide, narrow = f"{octets[0]}.0.0.0/8", f"{octets[0]}.{octets[1]}.0.0/16"
    return [
        ("no filter", {}),
        ("last 24 h", {"range": "24h"}),
        ("client_id", {"client_id": newest.client_id}),
        ("outcome=failure", {"outcome": "failure"}),
        ("reason=bad_secret", {"reason": "bad_secret"}),
        ("endpoint=introspect", {"endpoint": "introspect"}),
        ("source=keycloak", {"source": "keycloak"}),
        (f"ip {wide}", {"ip": wide}),
        (f"ip {narrow}", {"ip": narrow}),
        ("ip 2001:db8::/32", {"ip": "2001:db8::/32"}),
        (
            "failure + 7 d + client",
            {"outcome": "failure", "range": "7d", "client_id": newest.client_id},
        ),
        ("jti", {"jti": jti or "none"}),
    ]


def deep_cursor(params: dict[str, str]) -> tuple[str | None, int]:
    """The `before` cursor of the 100th page (OFFSET here is setup, not the measured path),
    or of the last page when there are fewer, and that page's number."""
    form = EventFilterForm(params)
    assert form.is_valid(), form.errors
    events = events_filter(form.filters()).order_by("-occurred_at", "-id")
    wanted = (DEEP_PAGE - 1) * PAGE_SIZE
    row = events[wanted - 1 : wanted].first()
    if row is not None:
        return Cursor.of(row).encode(), DEEP_PAGE
    count = events[: wanted + 1].count()
    pages = max(1, -(-count // PAGE_SIZE))
    if pages == 1:
        return None, 1
    last = events[(pages - 1) * PAGE_SIZE - 1 : (pages - 1) * PAGE_SIZE].first()
    return Cursor.of(last).encode(), pages


def timings(browser: Client, params: dict[str, str], rounds: int) -> list[float]:
    for _ in range(3):  # warm caches, connections and the template loader
        browser.get(URL, params)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        response = browser.get(URL, params)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (params, response.status_code)
    return times


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def plan_summary(params: dict[str, str], before: str | None, full: bool) -> str:
    form = EventFilterForm(params | ({"before": before} if before else {}))
    assert form.is_valid(), form.errors
    query = page_query(events_filter(form.filters()), before=form.cleaned_data["before"])
    sql, sql_params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, sql_params)
        plan = cursor.fetchone()[0]
        if full:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, sql_params)
            print("\n".join(row[0] for row in cursor.fetchall()))
    if isinstance(plan, str):
        plan = json.loads(plan)
    root = plan[0]["Plan"]
    nodes = list(_walk(root))
    ran = [n for n in nodes if n.get("Actual Loops", 0) > 0]
    indexes = sorted({_index_label(n) for n in ran if "Index Name" in n})
    scans = [n for n in ran if "Relation Name" in n]
    kinds = sorted({n["Node Type"] for n in ran if n["Node Type"] in _NOTABLE})
    read = sum(
        (n.get("Actual Rows", 0) + n.get("Rows Removed by Filter", 0)) * n.get("Actual Loops", 1)
        for n in scans
    )
    buffers = root.get("Shared Hit Blocks", 0) + root.get("Shared Read Blocks", 0)
    return (
        f"{plan[0]['Execution Time']:7.2f} ms  partitions {len(scans):2d}/"
        f"{len([n for n in nodes if 'Relation Name' in n]):2d}  rows read {read:6d}  "
        f"buffers {buffers:6d}  {' '.join(kinds) or '-'}  [{', '.join(indexes)}]"
    )


_NOTABLE = {"Seq Scan", "Sort", "Incremental Sort", "Bitmap Heap Scan", "Merge Append"}


def _index_label(node: dict) -> str:
    """An index by its name without the day partition's prefix (one name for all days)."""
    return re.sub(r"^\w+?_p\d{8}_", "", node["Index Name"])


def _walk(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from _walk(child)


def viewer_login() -> Client:
    user, created = User.objects.get_or_create(username="bench-explorer")
    if created:
        user.set_unusable_password()
        user.save()
        user.groups.add(Group.objects.get_or_create(name="viewer")[0])
    browser = Client()
    browser.force_login(user)
    return browser


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="timed requests per page")
    parser.add_argument("--explain", action="store_true", help="one-line plan summaries")
    parser.add_argument("--plans", action="store_true", help="whole EXPLAIN ANALYZE plans")
    options = parser.parse_args()
    postgres = connection.vendor == "postgresql"
    total = TokenEvent.objects.order_by().count() if not postgres else _estimate()
    print(f"Events: ~{total:,} ({connection.vendor}); {options.rounds} rounds per page\n")
    browser = viewer_login()
    worst = 0.0
    print(f"{'filter':<28} {'page':>5} {'p50 ms':>8} {'p95 ms':>8}")
    for name, params in scenarios():
        cursor, deep = deep_cursor(params)
        pages = [(1, None)] + ([(deep, cursor)] if cursor else [])
        for number, before in pages:
            query = params | ({"before": before} if before else {})
            times = timings(browser, query, options.rounds)
            worst = max(worst, p95(times))
            print(f"{name:<28} {number:>5} {statistics.median(times):8.1f} {p95(times):8.1f}")
            if (options.explain or options.plans) and postgres:
                print("      " + plan_summary(params, before, options.plans))
    verdict = "MET" if worst <= TARGET_MS else "MISS"
    print(f"\nWorst p95: {worst:.1f} ms; target ≤ {TARGET_MS} ms: {verdict}")


def _estimate() -> int:
    """Rows by the planner's statistics: an exact count of millions is itself slow."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(SUM(c.reltuples), 0)::bigint FROM pg_class c "
            "JOIN pg_inherits i ON i.inhrelid = c.oid WHERE i.inhparent = %s::regclass",
            [TokenEvent._meta.db_table],
        )
        partitioned = cursor.fetchone()[0]
        if partitioned:
            return partitioned
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
            [TokenEvent._meta.db_table],
        )
        return cursor.fetchone()[0]


if __name__ == "__main__":
    main()
