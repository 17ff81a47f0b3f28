"""Analytics fixtures: token events as the explorer reads them, and the documented sample
logs (docs/samples/) and fresh vendor events for ingestion."""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from django.db import connection

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


def partitions_for(*moments: datetime) -> None:
    """On PostgreSQL, the day partitions rows written straight through the ORM need (the
    store creates them itself; these factories bypass it to place rows exactly)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            partitions_create(cursor, {moment.astimezone(UTC).date() for moment in moments})


@pytest.fixture
def make_event(db):
    def factory(**fields) -> TokenEvent:
        row = event_fields(**fields)
        partitions_for(row["occurred_at"])
        return TokenEvent.objects.create(**row)

    return factory


@pytest.fixture
def make_events(db):
    """`count` events one second apart, the newest at `newest` (default BASE_TIME)."""

    def factory(count: int, *, newest: datetime = BASE_TIME, **fields) -> list[TokenEvent]:
        rows = [
            TokenEvent(**event_fields(occurred_at=newest - timedelta(seconds=n), **fields))
            for n in range(count)
        ]
        partitions_for(*(row.occurred_at for row in rows))
        return TokenEvent.objects.bulk_create(rows)

    return factory


# --- Ingestion ---------------------------------------------------------------------------

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples"
SAMPLE_FILES = {
    "keyward": SAMPLES / "keyward-events.jsonl",
    "keycloak": SAMPLES / "keycloak-events.jsonl",
    "auth0": SAMPLES / "auth0-log-stream.jsonl",
    "okta": SAMPLES / "okta-system-log.jsonl",
}


def sample_objects(log_format: str) -> list[dict]:
    """The sample's lines that are JSON objects (the malformed one left out)."""
    objects = []
    for line in SAMPLE_FILES[log_format].read_bytes().splitlines():
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(data, dict):
            objects.append(data)
    return objects


@pytest.fixture
def sample_path():
    return SAMPLE_FILES.__getitem__


def fresh_events(log_format: str, count: int, *, at: float | None = None) -> list[dict]:
    """`count` valid client-credentials events of `log_format`, each with its own id, at
    `at` (default: now) — inside the retention window whenever the test runs."""
    moment = time.time() if at is None else at
    iso = datetime.fromtimestamp(moment, tz=UTC).isoformat().replace("+00:00", "Z")
    events = []
    for _ in range(count):
        native = str(uuid.uuid4())
        if log_format == "keycloak":
            event = {
                "id": native,
                "time": int(moment * 1000),
                "type": "CLIENT_LOGIN",
                "clientId": "orders-service",
                "ipAddress": "10.0.0.7",
                "details": {"grant_type": "client_credentials", "scope": "orders:read"},
            }
        elif log_format == "auth0":
            event = {
                "log_id": native,
                "data": {
                    "date": iso,
                    "type": "feccft",
                    "description": "Unauthorized",
                    "client_id": "AaiyAPdpYdesoKnqjj8HJqRn4T5titww",
                    "ip": "34.89.12.7",
                    "log_id": native,
                },
            }
        elif log_format == "okta":
            event = {
                "uuid": native,
                "published": iso,
                "eventType": "app.oauth2.as.token.grant.access_token",
                "actor": {"id": "0oa8f5j3ecb5w3dF35d7", "type": "PublicClientApp"},
                "client": {"ipAddress": "52.28.14.9"},
                "outcome": {"result": "SUCCESS"},
                "debugContext": {
                    "debugData": {"grantType": "client_credentials", "grantedScopes": "a.read"}
                },
            }
        else:
            event = {
                "id": native,
                "occurred_at": moment,
                "endpoint": "token",
                "client_id": "Xw3kP9sLq2VmN7bR4tYc8HdF",
                "outcome": "failure",
                "reason": "bad_secret",
                "status_code": 401,
            }
        events.append(event)
    return events


def ndjson(lines: list) -> bytes:
    """JSON Lines: dicts encoded, bytes as they are."""
    return b"".join(
        (line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n" for line in lines
    )
