"""The token-event record: one request to a token service, whichever service it was.

`TokenEventRecord` is the one definition of a token event. The token service builds it and
writes it to the Redis buffer (`to_buffer`), the drain reads it back (`from_buffer`) and
stores it as a `TokenEvent` row (`as_row`), and docs/events.md shows the JSON
Schema generated from it (`token_event_json_schema`, `manage.py token_event_schema`). The
rate-limit rewrite (`as_rate_limited`) is defined here and nowhere else. Nothing in it is
specific to Keyward's own token service: logs of other services (Keycloak, Auth0, Okta)
map onto the same record, and what they cannot fill keeps its default.

Producers that we wrote build records directly, without validation: that is the token
service's hot path, where building and encoding a record costs what a dict and
`orjson.dumps` did. Input we do not control goes through `from_buffer` / `from_dict`, which
validate and clean every field so that the table cannot refuse the result.

A plain dataclass, not a frozen one: the views fill the record in as they learn about the
request, and a frozen dataclass's `__init__` and `replace()` cost 5–10 µs per request
(measured), several times the rest of the record's cost. Without `__slots__` orjson
encodes it from its `__dict__`, as fast as a dict.
"""

from __future__ import annotations

import ipaddress
import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, datetime
from functools import lru_cache
from importlib import import_module
from types import ModuleType
from typing import Any, get_type_hints

import orjson
from django.conf import settings
from django.db import models

from base.secrets import SECRET_PREFIX

# The event table (analytics.models.TokenEvent) sits in a layer above every producer of
# events (tokens, log ingestion), so it cannot be what defines them: this module owns the
# choices and the column lengths, and the model takes its columns from here. The arrow
# points one way, analytics -> audit; tokens and clients read and write events through the
# store that settings.KEYWARD_EVENT_STORE names (`event_store()` below).


class Endpoint(models.TextChoices):
    TOKEN = "token", "Token"
    INTROSPECT = "introspect", "Introspection"
    REVOKE = "revoke", "Revocation"


class Outcome(models.TextChoices):
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"


class Reason(models.TextChoices):
    OK = "ok", "OK"
    BAD_SECRET = "bad_secret", "Bad secret"
    UNKNOWN_CLIENT = "unknown_client", "Unknown client"
    DISABLED_CLIENT = "disabled_client", "Disabled client"
    EXPIRED_SECRET = "expired_secret", "Expired secret"
    REVOKED_SECRET = "revoked_secret", "Revoked secret"
    IP_NOT_ALLOWED = "ip_not_allowed", "Source IP not allowed"
    INVALID_SCOPE = "invalid_scope", "Invalid scope"
    RATE_LIMITED = "rate_limited", "Rate limited"
    INVALID_REQUEST = "invalid_request", "Invalid request"
    INVALID_CLIENT = "invalid_client", "Invalid client authentication"
    UNSUPPORTED_GRANT_TYPE = "unsupported_grant_type", "Unsupported grant type"
    UNAUTHORIZED = "unauthorized", "Caller not authorized"
    SERVER_ERROR = "server_error", "Server error"


# Column lengths of the event table's text columns (analytics.models.TokenEvent uses them).
MAX_LENGTHS: dict[str, int] = {
    "endpoint": 16,
    "client_id": 200,
    "outcome": 8,
    "reason": 32,
    "user_agent": 300,
    "scopes_requested": 1000,
    "scopes_granted": 1000,
    "jti": 64,
    "source": 64,
    "subject_client_id": 200,
}

# The source of events that Keyward's own token service recorded.
SOURCE_KEYWARD = "keyward"
# What a client_id that holds a client secret is stored as (see `client_id_redacted`).
REDACTED_CLIENT_ID = f"{SECRET_PREFIX}…redacted"

_UUID_PATTERN = "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
# 0001-01-01 to 9999-12-31 would be the datetime range; events are not older than 1970.
_EPOCH_MAX = 253_402_300_799
_BIGINT_MAX = 2**63 - 1
_STATUS_MAX = 32_767  # PositiveSmallIntegerField


def _max_length(name: str) -> int:
    return MAX_LENGTHS[name]


def _field(description: str, *, default: Any = MISSING, **schema: Any) -> Any:
    """A record field: its description and JSON Schema keywords beyond the type."""
    return field(default=default, metadata={"description": description, "schema": schema})


@dataclass(kw_only=True)
class TokenEventRecord:
    """One request to a token service's token, introspection or revocation endpoint.

    Fields in the order of TokenEvent's columns; the ones without a default are required.
    """

    id: str = _field(
        "Unique per event, a UUID (32 hex digits, dashes allowed); the drain is idempotent on it.",
        pattern=_UUID_PATTERN,
    )
    occurred_at: float = _field(
        "When the request arrived, Unix epoch seconds (fractional).",
        minimum=0,
        maximum=_EPOCH_MAX,
    )
    endpoint: str = _field("The endpoint called.", enum=list(Endpoint.values))
    client_id: str = _field(
        "The client_id as presented: may name no registered client, or be garbage. A value "
        f"holding a client secret (prefix {SECRET_PREFIX}) is stored as {REDACTED_CLIENT_ID}.",
        default="",
        maxLength=_max_length("client_id"),
    )
    client_known: bool = _field(
        "Whether client_id names a registered client.",
        default=False,
    )
    secret_id: int | None = _field(
        "Primary key of the client secret that authenticated the request, when one did.",
        default=None,
        minimum=-_BIGINT_MAX,
        maximum=_BIGINT_MAX,
    )
    outcome: str = _field("Whether the request succeeded.", enum=list(Outcome.values))
    reason: str = _field(
        "Why it succeeded or failed: one of the examples; the drain stores other codes too, "
        "so a newer token service may add some before its drain is upgraded.",
        minLength=1,
        maxLength=_max_length("reason"),
        examples=list(Reason.values),
    )
    source_ip: str | None = _field(
        "The client's address (IPv4 or IPv6): the socket's, or a trusted proxy's "
        "X-Forwarded-For hop.",
        default=None,
        anyOf=[{"format": "ipv4"}, {"format": "ipv6"}],
    )
    user_agent: str = _field(
        "The User-Agent header.",
        default="",
        maxLength=_max_length("user_agent"),
    )
    scopes_requested: str = _field(
        "Space-separated scopes, as requested.",
        default="",
        maxLength=_max_length("scopes_requested"),
    )
    scopes_granted: str = _field(
        "Space-separated scopes, as issued (introspection: those of the inspected token, when "
        "the caller may see it); empty on failure.",
        default="",
        maxLength=_max_length("scopes_granted"),
    )
    jti: str = _field(
        "The jti of the token issued (token endpoint) or inspected (introspection, "
        "revocation), else empty.",
        default="",
        maxLength=_max_length("jti"),
    )
    status_code: int = _field(
        "HTTP status of the answer.",
        minimum=0,
        maximum=_STATUS_MAX,
    )
    duration_ms: float = _field(
        "Time spent serving the request, in milliseconds.",
        default=0.0,
    )
    source: str = _field(
        "Which token service the event came from: keyward for this one, else the name given "
        "when its logs were ingested (by default the log format: keycloak, auth0, okta).",
        default=SOURCE_KEYWARD,
        minLength=1,
        maxLength=_max_length("source"),
    )
    subject_client_id: str = _field(
        "Introspection of an active token: the client_id the inspected token was issued to "
        "(client_id is then the resource server that asked, and scopes_granted the token's "
        "scopes). Empty otherwise.",
        default="",
        maxLength=_max_length("subject_client_id"),
    )

    # --- The buffer ------------------------------------------------------------------

    def to_buffer(self) -> bytes:
        """The record as one JSON object (UTF-8 bytes), the buffer's item format."""
        return orjson.dumps(self)

    @classmethod
    def from_buffer(cls, item: bytes | str) -> TokenEventRecord:
        """The record in a buffer item, validated and cleaned (see `from_dict`)."""
        try:
            data = orjson.loads(item)
        except orjson.JSONDecodeError:
            # Other encoders (Python's json among them) write a lone surrogate as the valid
            # JSON escape "\ud800", which orjson refuses; from_dict repairs it.
            data = json.loads(item)
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenEventRecord:
        """A record from decoded JSON of any source, validated and cleaned so that the table
        accepts it: strings cut to the column lengths, NUL characters and lone surrogates
        removed, the address normalised. Unknown keys are ignored.

        Raises KeyError (a required field is missing), TypeError or ValueError.
        """
        return cls(
            id=_uuid_hex(data["id"]),
            occurred_at=_epoch_seconds(data["occurred_at"]),
            endpoint=_choice(data["endpoint"], _ENDPOINTS),
            client_id=client_id_redacted(_text(data.get("client_id"), _LIMITS["client_id"])),
            client_known=bool(data.get("client_known")),
            secret_id=_bigint_or_none(data.get("secret_id")),
            outcome=_choice(data["outcome"], _OUTCOMES),
            reason=_code(data["reason"], _LIMITS["reason"]),
            source_ip=_ip_or_none(data.get("source_ip")),
            user_agent=_text(data.get("user_agent"), _LIMITS["user_agent"]),
            scopes_requested=_text(data.get("scopes_requested"), _LIMITS["scopes_requested"]),
            scopes_granted=_text(data.get("scopes_granted"), _LIMITS["scopes_granted"]),
            jti=_text(data.get("jti"), _LIMITS["jti"]),
            status_code=_status_code(data["status_code"]),
            duration_ms=_duration(data.get("duration_ms")),
            source=_code(data.get("source", SOURCE_KEYWARD), _LIMITS["source"]),
            subject_client_id=client_id_redacted(
                _text(data.get("subject_client_id"), _LIMITS["subject_client_id"])
            ),
        )

    # --- The table -------------------------------------------------------------------

    def as_row(self) -> tuple:
        """The record as a TokenEvent row, values in COLUMNS order. Expects a record that
        we built or `from_dict` validated."""
        return (
            uuid.UUID(self.id),
            datetime.fromtimestamp(self.occurred_at, tz=UTC),
            self.endpoint,
            self.client_id,
            self.client_known,
            self.secret_id,
            self.outcome,
            self.reason,
            self.source_ip,
            self.user_agent,
            self.scopes_requested,
            self.scopes_granted,
            self.jti,
            self.status_code,
            self.duration_ms,
            self.source,
            self.subject_client_id,
        )

    # --- Rules -----------------------------------------------------------------------

    def to_buffer_rate_limited(self) -> bytes:
        """`as_rate_limited().to_buffer()` without building the new record: the token service
        sends this form with every request (tokens/sink.py), and the record's construction
        cost more than the encoding (31k against 18k instructions for both forms, callgrind)."""
        return orjson.dumps(vars(self) | _RATE_LIMITED)

    def as_rate_limited(self) -> TokenEventRecord:
        """The same request as answered when it is over a rate limit: 429, and nothing
        issued or granted. A new record; this one is unchanged."""
        # Not dataclasses.replace(): the token service calls this on every request (see
        # tokens/sink.py), and replace() takes twice as long.
        return type(self)(**(vars(self) | _RATE_LIMITED))


_RATE_LIMITED = {
    "outcome": Outcome.FAILURE,
    "reason": Reason.RATE_LIMITED,
    "status_code": 429,
    "jti": "",
    "scopes_granted": "",
    "subject_client_id": "",
}


# TokenEvent columns in table order (the record's field order); as_row() follows it.
COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(TokenEventRecord))
_LIMITS = {name: MAX_LENGTHS[name] for name in COLUMNS if name in MAX_LENGTHS}
_ENDPOINTS = frozenset(Endpoint.values)
_OUTCOMES = frozenset(Outcome.values)


# --- Validation (from_dict) ----------------------------------------------------------


def client_id_redacted(value: str) -> str:
    """`value`, unless it holds a Keyward client secret: then REDACTED_CLIENT_ID.

    A client_id is logged as presented, and callers do paste their secret into it (swapped
    curl -u arguments, one variable for the other). The event log is read by more people
    than may see secrets, so anything with the secrets' fixed prefix, anywhere in the value
    ("id:kwsec_..." too), is replaced whole. Client ids we issue are alphanumeric, so no
    registered client is ever redacted.
    """
    return REDACTED_CLIENT_ID if SECRET_PREFIX in value else value


def _uuid_hex(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("id must be a string")
    return uuid.UUID(value).hex


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite")
    return value


def _epoch_seconds(value: Any) -> float:
    value = _number(value, "occurred_at")
    if not 0 <= value <= _EPOCH_MAX:
        raise ValueError(f"occurred_at out of range: {value!r}")
    return value


def _duration(value: Any) -> float:
    return float(_number(value or 0, "duration_ms"))


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer")
    return value


def _bigint_or_none(value: Any) -> int | None:
    if value is None:
        return None
    if abs(_integer(value, "secret_id")) > _BIGINT_MAX:
        raise ValueError(f"secret_id out of range: {value!r}")
    return value


def _status_code(value: Any) -> int:
    if not 0 <= _integer(value, "status_code") <= _STATUS_MAX:
        raise ValueError(f"status_code out of range: {value!r}")
    return value


def _code(value: Any, limit: int) -> str:
    if not isinstance(value, str) or not value or len(value) > limit or not value.isascii():
        raise ValueError(f"bad code {value!r}")
    # str(): a TextChoices member (direct writes) becomes its plain value.
    return str(value)


def _choice(value: Any, allowed: frozenset[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"unknown value {value!r}")
    return str(value)


def _text(value: Any, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    # PostgreSQL text cannot hold NUL, nor UTF-8 lone surrogates (valid in JSON "\ud800");
    # truncation matches the column lengths.
    value = value.replace("\x00", "")[:limit]
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def _ip_or_none(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError("source_ip must be a string")
    return _ip_text(value)


@lru_cache(maxsize=4096)
def _ip_text(value: str) -> str:
    # Cached: parsing was a fifth of the drain's time, and a buffer repeats few addresses.
    return str(ipaddress.ip_address(value))


# --- JSON Schema ---------------------------------------------------------------------

_JSON_TYPES: dict[Any, str | list[str]] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    str | None: ["string", "null"],
    int | None: ["integer", "null"],
}


def token_event_json_schema() -> dict:
    """The record as a JSON Schema (draft 2020-12), generated from TokenEventRecord's fields:
    their types, descriptions, defaults and the keywords each field adds."""
    hints = get_type_hints(TokenEventRecord)
    properties = {}
    for f in fields(TokenEventRecord):
        prop = {"type": _JSON_TYPES[hints[f.name]], "description": f.metadata["description"]}
        if f.default is not MISSING:
            prop["default"] = f.default
        properties[f.name] = prop | f.metadata["schema"]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Token event",
        "description": (TokenEventRecord.__doc__ or "").split("\n")[0],
        "type": "object",
        "properties": properties,
        "required": [f.name for f in fields(TokenEventRecord) if f.default is MISSING],
        "additionalProperties": False,
    }


def event_store() -> ModuleType:
    """The module that stores and reads token events: settings.KEYWARD_EVENT_STORE
    (analytics.store). Named by a setting because the store's app sits above the apps that
    produce events (tokens writes them when Redis is absent or down) and show them (the
    client page): they reach it through here without importing it. Functions they call:
    `token_events_write(records)`, `client_recent_token_events(client_id=, limit=)`,
    `secret_uses_since(secret_ids=, since=)`."""
    return import_module(settings.KEYWARD_EVENT_STORE)
