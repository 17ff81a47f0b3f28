"""manage.py revoke_secret: revoke one secret of a client now."""

from __future__ import annotations

from django.core.management.base import CommandError

from audit.services import Actor
from clients.management.commands._cli import KeywardCommand
from clients.models import Client, ClientSecret
from clients.selectors import client_valid_secret_count
from security import services

BAD_INPUT = 2


class Command(KeywardCommand):
    help = "Revoke one secret of a client; the token service refuses it within a second."

    def add_arguments(self, parser) -> None:
        parser.add_argument("client_id")
        parser.add_argument("secret_id", help="The secret's numeric id (rotate_secret prints it).")

    def handle(self, *args, **options) -> None:
        client = Client.objects.filter(client_id=options["client_id"]).first()
        if client is None:
            raise CommandError(f"Unknown client_id {options['client_id']!r}.", returncode=BAD_INPUT)
        raw = options["secret_id"]
        secret = None
        if raw.isdigit():
            secret = ClientSecret.objects.filter(client=client, pk=int(raw)).first()
        if secret is None:
            raise CommandError(
                f"{client.name} has no secret with id {raw!r}.", returncode=BAD_INPUT
            )
        if secret.is_revoked():
            self.stdout.write(f"Secret {secret.pk} ({secret.hint}) was already revoked.")
            return
        services.client_secret_revoke(actor=Actor.cli(), secret=secret)
        self.stdout.write(f"Revoked secret {secret.pk} ({secret.hint}) of {client.name}.")
        if not client_valid_secret_count(client=client):
            self.stderr.write(f"Warning: {client.name} has no valid secret left.")
