"""Exit 1 when the token-event pipeline has stalled: the health check of beat and workers."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from tokens.pipeline import CHECKS, pipeline_status


class Command(BaseCommand):
    help = (
        "Report whether beat, the drain and the Redis event buffer are moving; exits 1 with "
        "the reasons when not. Embedded mode (no Redis) always reports ok."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--check",
            action="append",
            choices=CHECKS,
            help="Only this check (repeatable); default all. Unreachable Redis fails any.",
        )

    def handle(self, *args, check: list[str] | None = None, **options) -> None:
        wanted = set(check or CHECKS) | {"redis"}
        problems = [p for p in pipeline_status().problems if p.kind in wanted]
        if problems:
            raise CommandError("degraded: " + " | ".join(str(p) for p in problems))
        self.stdout.write("ok")
