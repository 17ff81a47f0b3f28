"""manage.py seed_traffic: synthetic clients and token events, for benchmarks and demos."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from analytics.models import TokenEvent
from analytics.seed import seed_clients, seed_events


class Command(BaseCommand):
    help = (
        "Load synthetic token traffic: N clients (created in bulk, named 'Seed client …') "
        "and M events spread over the last D days, with their rollups. PostgreSQL loads via "
        "COPY; SQLite goes through the event store (small numbers only)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--clients", type=int, default=10_000)
        parser.add_argument("--events", type=int, default=10_000_000)
        parser.add_argument("--days", type=float, default=30)
        parser.add_argument("--seed", type=int, default=None, help="Random seed (repeatable).")
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing when the event table already holds events (bin/dev's demo traffic).",
        )

    def handle(self, *args, clients: int, events: int, days: float, seed, **options) -> None:
        if clients < 1 or events < 0 or not 0 < days <= 3650:
            raise CommandError("need --clients ≥ 1, --events ≥ 0 and 0 < --days ≤ 3650")
        if options["if_empty"] and TokenEvent.objects.exists():
            self.stdout.write("Events already stored: no demo traffic added.")
            return
        self.stdout.write(f"Creating or reusing {clients:,} seed clients …")
        pool = seed_clients(clients)
        begun = time.monotonic()
        # The bar on stderr (tqdm turns itself off when that is not a terminal), the steps
        # and the summary on stdout.
        with tqdm(total=events, unit=" events", unit_scale=True, desc="COPY") as bar:
            seconds = seed_events(
                clients=pool,
                events=events,
                days=days,
                seed=seed,
                progress=bar.update,
                step=lambda what: self.stdout.write(f"{time.monotonic() - begun:7.1f} s  {what}"),
            )
        rate = events / seconds if seconds else 0
        self.stdout.write(
            f"{events:,} events over {days:g} days in {seconds:.1f} s ({rate:,.0f}/s)"
        )
