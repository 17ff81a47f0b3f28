"""Analytics fixtures: the documented sample logs and their readers."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

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
    import time
    import uuid
    from datetime import UTC, datetime

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
