"""Factories for token events as the explorer reads them."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from analytics.models import TokenEvent
from analytics.partitions import partitions_create

# A fixed "now" a little in the past, so tests place events relative to it exactly.
BASE_TIME = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
_sequence = itertools.count(1)


def event_fields(**fields) -> dict:
    defaults = {
        "id": uuid.uuid4(),
        "occurred_at": BASE_TIME,
        "endpoint": TokenEvent.Endpoint.TOKEN,
        "client_id": "billing-svc",
        "outcome": TokenEvent.Outcome.SUCCESS,
        "reason": TokenEvent.Reason.OK,
        "source_ip": "10.1.2.3",
        "scopes_requested": "orders:read",
        "scopes_granted": "orders:read",
        "jti": f"jti-{next(_sequence)}",
        "status_code": 200,
        "source": "keyward",
    }
    return defaults | fields


def partitions_ensure(moments) -> None:
    """Rows written straight to the table (not through the store) need their day's
    partition on PostgreSQL; the store creates them itself."""
    if connection.vendor != "postgresql":
        return
    with transaction.atomic(), connection.cursor() as cursor:
        partitions_create(cursor, {moment.astimezone(UTC).date() for moment in moments})


@pytest.fixture
def make_event(db):
    def factory(**fields) -> TokenEvent:
        fields = event_fields(**fields)
        partitions_ensure([fields["occurred_at"]])
        return TokenEvent.objects.create(**fields)

    return factory


@pytest.fixture
def make_events(db):
    """`count` events one second apart, the newest at `newest` (default BASE_TIME)."""

    def factory(count: int, *, newest: datetime = BASE_TIME, **fields) -> list[TokenEvent]:
        rows = [
            TokenEvent(**event_fields(occurred_at=newest - timedelta(seconds=n), **fields))
            for n in range(count)
        ]
        partitions_ensure([row.occurred_at for row in rows])
        return TokenEvent.objects.bulk_create(rows)

    return factory
