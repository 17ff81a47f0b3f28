from __future__ import annotations

from django.dispatch import Signal

# Sent after commit whenever a client, its secrets or its grants changed; sender is the
# client_id. The token service drops its per-process cache entry for that client.
client_changed = Signal()
