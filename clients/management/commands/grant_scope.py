"""manage.py grant_scope: let a client request a scope."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from audit.services import Actor
from clients import services
from clients.models import ScopeGrant

from ._cli import KeywardCommand, bad_input, client_by_id, one_line, scope_by_name


class Command(KeywardCommand):
    help = "Grant a scope to a client."

    def add_arguments(self, parser) -> None:
        parser.add_argument("client_id")
        parser.add_argument("scope")
        parser.add_argument("--reason", default="", help="Why the client needs it (audited).")

    def handle(self, *args, **options) -> None:
        client = client_by_id(options["client_id"])
        scope = scope_by_name(options["scope"])
        if ScopeGrant.objects.filter(client=client, scope=scope).exists():
            self.stdout.write(f"{client.name} already holds {scope.name}; nothing to do.")
            return
        try:
            services.scope_grant(
                actor=Actor.cli(), client=client, scope=scope, reason=options["reason"]
            )
        except ValidationError as error:
            raise bad_input(one_line(error)) from None
        self.stdout.write(f"Granted {scope.name} to {client.name} ({client.client_id}).")
