from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from audit.services import Actor
from tokens.models import SigningKey
from tokens.services import signing_key_rotate


class Command(BaseCommand):
    help = "Rotate the token signing keys: next → active, active → retired, a new next key."

    def add_arguments(self, parser):
        parser.add_argument(
            "--algorithm",
            choices=SigningKey.Algorithm.values,
            default=None,
            help="Algorithm of the new key (default: KEYWARD_SIGNING_ALGORITHM).",
        )

    def handle(self, *args, algorithm=None, **options):
        algorithm = algorithm or settings.KEYWARD_SIGNING_ALGORITHM
        rotation = signing_key_rotate(actor=Actor.cli(), algorithm=algorithm)
        retired = rotation.retired.kid if rotation.retired else "none"
        self.stdout.write(
            f"active: {rotation.active.kid} ({rotation.active.algorithm})\n"
            f"next:   {rotation.next.kid} ({rotation.next.algorithm})\n"
            f"retired: {retired}"
        )
