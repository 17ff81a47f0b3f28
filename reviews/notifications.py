"""Mail to a client's owner when a least-privilege change is applied or rolled back."""

from __future__ import annotations

import logging
from functools import partial

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from clients.models import Client

from .models import GrantChange

log = logging.getLogger("keyward.reviews")


def change_notify_on_commit(change: GrantChange, *, client: Client, event: str) -> None:
    if client.owner_email:
        transaction.on_commit(partial(_send, change, client.owner_email, event))


def _send(change: GrantChange, to: str, event: str) -> None:
    scopes = ", ".join(change.scope_names())
    body = (
        f"Keyward {event} a least-privilege change on client {change.client_name} "
        f"({change.client_id}).\n\nScopes removed by the change: {scopes}.\n"
        f"Change id: {change.pk} (rollback possible until {change.rollback_until():%Y-%m-%d}).\n"
    )
    try:
        send_mail(
            f"[Keyward] Scope change {event}: {change.client_name}",
            body,
            settings.DEFAULT_FROM_EMAIL,
            [to],
        )
    except OSError:
        # The change stands (committed, audited); a mail server outage must not undo it.
        log.warning("could not mail %s about change %s", to, change.pk)
