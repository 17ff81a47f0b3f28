"""Shared by the clients CLI commands: one-line errors with exit status 2."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from clients.models import Client, Scope

BAD_INPUT = 2


def bad_input(message: str) -> CommandError:
    return CommandError(message, returncode=BAD_INPUT)


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
