"""manage.py create_scope: add a scope to the catalogue."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError

from audit.services import Actor
from clients import services

from ._cli import KeywardCommand, bad_input, one_line


class Command(KeywardCommand):
    help = "Create a scope, e.g. orders:read."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        parser.add_argument("--description", default="")
        parser.add_argument("--team", default="", help="The team that owns the scope.")
        parser.add_argument(
            "--sensitive", action="store_true", help="Grants deserve a second look."
        )

    def handle(self, *args, **options) -> None:
        try:
            scope = services.scope_create(
                actor=Actor.cli(),
                name=options["name"],
                description=options["description"],
                owning_team=options["team"],
                sensitive=options["sensitive"],
            )
        except ValidationError as error:
            raise bad_input(one_line(error)) from None
        except IntegrityError:
            # Another process created the same name between validation and insert.
            raise bad_input(f"Scope {options['name']!r} already exists.") from None
        flag = " (sensitive)" if scope.sensitive else ""
        self.stdout.write(f"Created scope {scope.name}{flag}.")
