"""manage.py create_client: register a client and print its one-time secret."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.db import transaction

from audit.services import Actor
from clients import services
from clients.models import Client

from ._cli import KeywardCommand, bad_input, one_line, scope_by_name


class Command(KeywardCommand):
    help = "Register a client and print its client_id and one-time secret."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--scope", action="append", default=[], dest="scopes", help="Repeat for each scope."
        )
        parser.add_argument(
            "--environment",
            default=Client.Environment.DEVELOPMENT,
            help="development, staging or production.",
        )
        parser.add_argument("--owner-email", default="")
        parser.add_argument(
            "--json", action="store_true", help='Print {"client_id": ..., "client_secret": ...}.'
        )

    def handle(self, *args, **options) -> None:
        if options["environment"] not in Client.Environment.values:
            choices = ", ".join(Client.Environment.values)
            raise bad_input(
                f"Unknown environment {options['environment']!r}; use one of {choices}."
            )
        # Resolve every scope before writing anything: a typo must not leave a client behind.
        scopes = [scope_by_name(name) for name in dict.fromkeys(options["scopes"])]
        try:
            with transaction.atomic():
                client, secret = services.client_register(
                    actor=Actor.cli(),
                    name=options["name"],
                    environment=options["environment"],
                    owner_email=options["owner_email"],
                    scopes=scopes,
                )
        except ValidationError as error:
            raise bad_input(one_line(error)) from None
        if options["json"]:
            self.stdout.write(json.dumps({"client_id": client.client_id, "client_secret": secret}))
            return
        self.stdout.write(f"Registered {client.name} ({client.environment}).")
        self.stdout.write(f"client_id:     {client.client_id}")
        self.stdout.write(f"client_secret: {secret}")
        if scopes:
            self.stdout.write(f"scopes:        {' '.join(scope.name for scope in scopes)}")
        self.stdout.write("The secret is shown only this once; store it now.")
