"""Alerts fixtures: eager Celery, a stopped clock, and generated token traffic."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from analytics.models import TokenEvent
from keyward.celery import app as celery_app
from tests.analytics.conftest import partitions_for

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
Reason = TokenEvent.Reason


@pytest.fixture(autouse=True)
def _eager_celery():
    """Tasks queued on commit run in-process: unit tests never touch the real broker."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


def event(
    *,
    client_id: str = "",
    reason: str = Reason.OK,
    ip: str | None = "198.51.100.7",
    at: datetime | None = None,
    known: bool = True,
    scopes: str = "",
    secret_id: int | None = None,
    source: str = "keyward",
) -> TokenEvent:
    ok = reason == Reason.OK
    return TokenEvent(
        id=uuid.uuid4(),
        occurred_at=at or NOW,
        endpoint=TokenEvent.Endpoint.TOKEN,
        client_id=client_id,
        client_known=known,
        secret_id=secret_id,
        outcome=TokenEvent.Outcome.SUCCESS if ok else TokenEvent.Outcome.FAILURE,
        reason=reason,
        source_ip=ip,
        scopes_requested=scopes,
        status_code=200 if ok else 401,
        source=source,
    )


def traffic(count: int, *, spread: timedelta = timedelta(minutes=4), end=None, **fields):
    """`count` events evenly spread over `spread`, ending at `end` (default NOW)."""
    end = end or NOW
    step = spread / max(count, 1)
    events = [event(at=end - step * i, **fields) for i in range(count)]
    partitions_for(*(e.occurred_at for e in events))
    TokenEvent.objects.bulk_create(events)
    return events
