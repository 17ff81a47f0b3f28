"""manage.py reset_two_factor: remove a user's authenticator and recovery codes."""

from __future__ import annotations

from django.contrib.auth.models import User

from audit.services import Actor
from clients.management.commands._cli import KeywardCommand, bad_input
from dashboard.two_factor import two_factor_reset


class Command(KeywardCommand):
    help = (
        "Reset a user's two-factor sign-in (a lost phone, or the only admin locked out): they "
        "log in with their password alone until they set it up again."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")

    def handle(self, *args, **options) -> None:
        try:
            user = User.objects.get(username=options["username"])
        except User.DoesNotExist:
            raise bad_input(f"Unknown user {options['username']!r}.") from None
        two_factor_reset(actor=Actor.cli(), user=user)
        self.stdout.write(f"Two-factor sign-in of {user.username} reset.")
