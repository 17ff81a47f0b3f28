"""Token-event ingestion: the buffer the token service writes to and the drain into TokenEvent.

Event dicts (one per token-service request) have exactly these keys:
id (uuid hex), occurred_at (epoch seconds, float), endpoint, client_id, client_known,
secret_id (int or None), outcome, reason, source_ip (str or None), user_agent,
scopes_requested, scopes_granted, jti, status_code, duration_ms.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from .models import TokenEvent

# Redis list the token service RPUSHes JSON-encoded events onto (production mode).
EVENT_BUFFER_KEY = "keyward:token-events"


def token_event_from_dict(event: dict) -> TokenEvent:
    return TokenEvent(
        id=uuid.UUID(event["id"]),
        occurred_at=datetime.fromtimestamp(event["occurred_at"], tz=UTC),
        endpoint=event["endpoint"],
        client_id=(event.get("client_id") or "")[:200],
        client_known=bool(event.get("client_known")),
        secret_id=event.get("secret_id"),
        outcome=event["outcome"],
        reason=event["reason"],
        source_ip=event.get("source_ip"),
        user_agent=(event.get("user_agent") or "")[:300],
        scopes_requested=(event.get("scopes_requested") or "")[:1000],
        scopes_granted=(event.get("scopes_granted") or "")[:1000],
        jti=event.get("jti") or "",
        status_code=event["status_code"],
        duration_ms=event.get("duration_ms") or 0,
    )


def token_events_write(events: list[dict]) -> None:
    """Write events straight to the table: the embedded-mode sink and the Redis-down fallback."""
    TokenEvent.objects.bulk_create(
        [token_event_from_dict(event) for event in events], ignore_conflicts=True
    )
