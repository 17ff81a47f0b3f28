from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audit.services import Actor
from tokens.models import SigningKey
from tokens.services import RotationTooEarly, signing_key_rotate


class Command(BaseCommand):
    help = (
        "Rotate the token signing keys: next → active, active → retired, a new next key. "
        "Refused while the next key has been published for less than the token lifetime "
        "plus the JWKS cache time, unless --force."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--algorithm",
            choices=SigningKey.Algorithm.values,
            default=None,
            help="Algorithm of the new key (default: KEYWARD_SIGNING_ALGORITHM).",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Rotate even if validators' cached JWKS may not know the next key yet "
            "(recorded as forced in the audit trail).",
        )

    def handle(self, *args, algorithm=None, force=False, **options):
        algorithm = algorithm or settings.KEYWARD_SIGNING_ALGORITHM
        try:
            rotation = signing_key_rotate(actor=Actor.cli(), algorithm=algorithm, force=force)
        except RotationTooEarly as refused:
            raise CommandError(f"{refused} Use --force to rotate now.") from None
        retired = rotation.retired.kid if rotation.retired else "none"
        self.stdout.write(
            f"active: {rotation.active.kid} ({rotation.active.algorithm})"
            f"{' (forced)' if rotation.forced else ''}\n"
            f"next:   {rotation.next.kid} ({rotation.next.algorithm})\n"
            f"retired: {retired}"
        )
