from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audit.services import Actor
from tokens.models import SigningKey
from tokens.services import RotationTooEarly, signing_key_publish_next, signing_key_rotate


class Command(BaseCommand):
    help = (
        "Rotate the token signing keys: next → active, active → retired, a new next key. "
        "Refused while the next key has been published for less than the token lifetime "
        "plus the JWKS cache time, unless --force. --publish-next only publishes a next key "
        "(when there is none) so its lead time starts now: with the schedule off "
        "(KEYWARD_SIGNING_KEY_ROTATION_DAYS=0) that is how a later rotation needs no --force."
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
        parser.add_argument(
            "--publish-next",
            action="store_true",
            help="Publish a next key if there is none, and do not rotate.",
        )

    def handle(self, *args, algorithm=None, force=False, publish_next=False, **options):
        algorithm = algorithm or settings.KEYWARD_SIGNING_ALGORITHM
        if publish_next:
            upcoming = signing_key_publish_next(actor=Actor.cli(), algorithm=algorithm)
            signs_from = upcoming.promotable_at().isoformat(timespec="seconds")
            self.stdout.write(
                f"next: {upcoming.kid} ({upcoming.algorithm}), may sign from {signs_from}"
            )
            return
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
