from __future__ import annotations

from django.db import transaction
from django.dispatch import Signal

# Sent after commit whenever a client, its secrets or its grants changed; sender is the
# client_id. The token service drops its per-process cache entry for that client.
client_changed = Signal()


def client_changed_on_commit(client_id: str) -> None:
    """Send client_changed once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: client_changed.send(sender=client_id))
