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
