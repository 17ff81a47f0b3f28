"""Shared by the clients CLI commands: one-line errors with exit status 2."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from clients.models import Client, Scope

BAD_INPUT = 2


def bad_input(message: str) -> CommandError:
    return CommandError(message, returncode=BAD_INPUT)


class KeywardCommand(BaseCommand):
    """A command whose string arguments are known to be text.

    Python hands over argument bytes that are not UTF-8 as lone surrogates ("\\udcff"),
    which PostgreSQL cannot store and print() cannot encode: refuse them up front, in one
    line, before the command looks anything up.
    """

    def execute(self, *args, **options):
        # Django passes positional arguments as options too, under their names.
        for name, value in [*enumerate(args, start=1), *options.items()]:
            values = value if isinstance(value, list | tuple) else [value]
            if any(isinstance(item, str) and not _is_utf8(item) for item in values):
                raise bad_input(f"The {name} argument is not valid UTF-8 text.")
        return super().execute(*args, **options)


def _is_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def one_line(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        parts = [f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items()]
    else:
        parts = error.messages
    return "; ".join(parts).replace("\n", " ")


def scope_by_name(name: str) -> Scope:
    try:
        return Scope.objects.get(name=name)
    except Scope.DoesNotExist:
        raise bad_input(f"Unknown scope {name!r}; create it first with create_scope.") from None


def client_by_id(client_id: str) -> Client:
    try:
        return Client.objects.get(client_id=client_id)
    except Client.DoesNotExist:
        raise bad_input(f"Unknown client_id {client_id!r}.") from None
