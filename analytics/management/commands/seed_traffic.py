"""manage.py seed_traffic: synthetic clients and token events, for benchmarks and demos."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from analytics.models import TokenEvent
from analytics.seed import seed_clients, seed_events


class Command(BaseCommand):
    help = (
        "Load synthetic token traffic: N clients (created in bulk, named 'Seed client …') "
        "and M events spread over the last D days, with their rollups. PostgreSQL loads via "
        "COPY; SQLite goes through the event store (small numbers only)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--clients", type=int, default=100)
        parser.add_argument("--events", type=int, default=100_000)
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
        console = Console(file=self.stdout._out, stderr=False)
        with console.status(f"Creating {clients:,} clients"):
            pool = seed_clients(clients)
        console.print(f"{len(pool):,} seed clients ready")
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        )
        begun = time.monotonic()
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("events (COPY)", total=events)
            seconds = seed_events(
                clients=pool,
                events=events,
                days=days,
                seed=seed,
                progress=lambda n: progress.advance(task, n),
                step=lambda what: console.print(f"{time.monotonic() - begun:7.1f} s  {what}"),
            )
        rate = events / seconds if seconds else 0
        console.print(f"{events:,} events over {days:g} days in {seconds:.1f} s ({rate:,.0f}/s)")
