from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from audit.events import token_event_json_schema


class Command(BaseCommand):
    help = (
        "Print the token-event record's JSON Schema (generated from TokenEventRecord); "
        "docs/events.md shows the same text."
    )

    def handle(self, *args, **options):
        self.stdout.write(json.dumps(token_event_json_schema(), indent=2))
