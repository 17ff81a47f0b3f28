"""manage.py rotate_secret: a new secret now, the current ones valid for a grace period."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from audit.services import Actor
from clients.management.commands._cli import KeywardCommand
from clients.models import Client
from security import services
from security.forms import DEFAULT_GRACE, parse_grace

BAD_INPUT = 2


class Command(KeywardCommand):
    help = (
        "Rotate a client's secret: print the new secret once; the current secrets keep "
        "working for --grace (default 24h)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("client_id")
        parser.add_argument(
            "--grace",
            default=DEFAULT_GRACE,
            help="How long the current secrets stay valid: 0, 30m, 1h, 24h, 7d (max 90d).",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help='Print {"client_id", "client_secret", "secret_id", "old_secrets_expire_at"}.',
        )

    def handle(self, *args, **options) -> None:
        # Validate everything before writing: bad input must leave nothing behind.
        try:
            grace = parse_grace(options["grace"])
        except ValueError as exc:
            raise CommandError(f"--grace: {exc}", returncode=BAD_INPUT) from None
        client = Client.objects.filter(client_id=options["client_id"]).first()
        if client is None:
            raise CommandError(f"Unknown client_id {options['client_id']!r}.", returncode=BAD_INPUT)
        try:
            secret, plain = services.client_secret_rotate(
                actor=Actor.cli(), client=client, grace=grace
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages), returncode=BAD_INPUT) from None
        older = client.secrets.exclude(pk=secret.pk).filter(
            revoked_at__isnull=True, expires_at__gte=secret.created_at
        )
        old_expiry = max((old.expires_at for old in older), default=None)
        self._print(options["json"], client, secret, plain, old_expiry)

    def _print(self, as_json: bool, client, secret, plain: str, old_expiry) -> None:
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "client_id": client.client_id,
                        "client_secret": plain,
                        "secret_id": secret.pk,
                        "old_secrets_expire_at": old_expiry.isoformat() if old_expiry else None,
                    }
                )
            )
            return
        self.stdout.write(f"client_id:     {client.client_id}")
        self.stdout.write(f"client_secret: {plain}")
        self.stdout.write(f"secret_id:     {secret.pk}")
        expires = secret.expires_at.isoformat() if secret.expires_at else "never"
        self.stdout.write(f"expires_at:    {expires}")
        if old_expiry:
            self.stdout.write(f"The previous secrets stop working at {old_expiry.isoformat()}.")
        self.stderr.write("Store the secret now: it is not shown again.")
