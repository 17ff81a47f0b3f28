"""Scope review fixtures: a stopped clock, token events written through the store, and
grants created in the past (by travelling there, so granted_at is set as in production)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from analytics.store import token_events_write
from audit.events import TokenEventRecord

START = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(START, tick=False)
    return time_machine


def request_event(client_id: str, *, requested: str = "", granted: str = "", source="keyward"):
    """A successful token request at the (travelled) present."""
    from django.utils import timezone

    return TokenEventRecord(
        id=uuid.uuid4().hex,
        occurred_at=timezone.now().timestamp(),
        endpoint="token",
        client_id=client_id,
        client_known=True,
        outcome="success",
        reason="ok",
        source_ip="203.0.113.7",
        status_code=200,
        scopes_requested=requested,
        scopes_granted=granted,
        source=source,
    )


@pytest.fixture
def use():
    """use(client, "a b", source=…): the client got a token carrying those scopes now."""

    def record(client, scopes: str, *, source: str = "keyward", explicit: bool = True) -> None:
        token_events_write(
            [
                request_event(
                    client.client_id,
                    requested=scopes if explicit else "",
                    granted=scopes,
                    source=source,
                )
            ]
        )

    return record


def days(n: int) -> timedelta:
    return timedelta(days=n)
