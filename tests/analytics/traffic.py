"""Token events for the chart, overview and client-activity tests, written through the
store (so the rollups are maintained as in production)."""

from __future__ import annotations

import uuid
from datetime import datetime

from analytics.store import token_events_write
from audit.events import TokenEventRecord


def event(
    at: datetime, *, client_id="billing", reason="ok", ip="203.0.113.7", **fields
) -> TokenEventRecord:
    outcome = "success" if reason == "ok" else "failure"
    return TokenEventRecord(
        id=uuid.uuid4().hex,
        occurred_at=at.timestamp(),
        endpoint=fields.pop("endpoint", "token"),
        client_id=client_id,
        outcome=outcome,
        reason=reason,
        source_ip=ip,
        status_code=200 if outcome == "success" else 401,
        **fields,
    )


def events_write(*records: TokenEventRecord) -> None:
    token_events_write(list(records))
