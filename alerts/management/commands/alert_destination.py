"""manage.py alert_destination add|list|remove: alert notification destinations from the CLI.

The same service as the page (alerts.services), so every change is audited (actor `cli`).
A webhook's signing secret is printed once, on stdout, and never again.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from alerts.models import AlertDestination, Severity
from alerts.services import destination_create, destination_delete
from audit.services import Actor
from clients.management.commands._cli import KeywardCommand, bad_input
from clients.models import Client


class Command(KeywardCommand):
    help = "Add, list or remove alert notification destinations (email or signed webhook)."

    def add_arguments(self, parser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        add = actions.add_parser("add", help="Add a destination.")
        add.add_argument("name")
        add.add_argument("kind", choices=AlertDestination.Kind.values)
        add.add_argument("target", help="Comma-separated email addresses, or the webhook URL.")
        add.add_argument("--min-severity", default=Severity.HIGH, choices=Severity.values)
        add.add_argument(
            "--environment",
            action="append",
            default=[],
            choices=Client.Environment.values,
            help="Route only this environment's alerts (repeatable); default: all.",
        )
        actions.add_parser("list", help="List destinations.")
        remove = actions.add_parser("remove", help="Remove a destination by name.")
        remove.add_argument("name")

    def handle(self, *args, **options) -> None:
        getattr(self, f"_{options['action']}")(options)

    def _add(self, options: dict) -> None:
        try:
            destination, secret = destination_create(
                actor=Actor.cli(),
                name=options["name"],
                kind=options["kind"],
                target=options["target"],
                min_severity=options["min_severity"],
                environments=options["environment"],
            )
        except ValidationError as exc:
            raise bad_input(" ".join(exc.messages)) from None
        self.stdout.write(f"Added {destination.kind} destination {destination.name!r}.")
        if secret:
            self.stdout.write("Signing secret (shown once, store it with the receiver):")
            self.stdout.write(secret)

    def _list(self, options: dict) -> None:
        for d in AlertDestination.objects.all():
            environments = ",".join(d.environments) or "all"
            self.stdout.write(
                f"{d.name}\t{d.kind}\t{d.target}\tseverity>={d.min_severity}\t{environments}"
            )

    def _remove(self, options: dict) -> None:
        destination = AlertDestination.objects.filter(name=options["name"]).first()
        if destination is None:
            raise bad_input(f"No destination named {options['name']!r}.")
        destination_delete(actor=Actor.cli(), destination=destination)
        self.stdout.write(f"Removed {destination.name!r}.")
