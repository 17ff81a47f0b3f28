"""Log formats of token services, each mapped onto the one event record.

A mapping takes one decoded JSON line (a dict) and the source name, and returns a
validated `TokenEventRecord` (`client_known` is left for the caller, which looks clients
up per batch). It raises:

- `NotATokenEvent` for a valid line of the format that is not a client-credentials token
  request (a user login, another grant): the line is skipped, not refused;
- `KeyError` (a required field is missing), `TypeError` or `ValueError` for a line it cannot
  map: the line is refused with that reason.

Event ids are deterministic, so ingesting the same line twice stores it once: a UUID5 of
the source name and the service's own event id (Keycloak `id`, Auth0 `log_id`, Okta `uuid`),
or, where the line has no id (Keycloak before version 22), of the source name and the
line's canonical JSON (keys sorted). Keyward's own lines carry their id.

docs/events.md documents each mapping field by field; keep the two in step.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from audit.events import SOURCE_KEYWARD, Endpoint, Outcome, Reason, TokenEventRecord


class NotATokenEvent(Exception):  # noqa: N818 - a verdict about a line, not an error
    """A well-formed line that records something other than a client-credentials token
    request; ingestion skips it."""


# Ingested event ids: UUID5 in this fixed namespace (never change it: ids would change and
# re-ingesting old files would store every event a second time).
EVENT_ID_NAMESPACE = uuid.UUID("0b6f1c9e-8f3a-5d2b-9c41-6a7e2f0d4b18")

# Source names: what `--source` and ingestion tokens accept (lowercase, no spaces), so a
# source reads the same in filters, URLs and charts.
SOURCE_NAME_RE = re.compile(r"\A[a-z0-9][a-z0-9._-]{0,63}\Z")

_CODE_MAX = 32  # TokenEvent.reason's length


def event_id_native(source: str, native_id: Any) -> str:
    """The event id of a line that carries the service's own event id."""
    if not isinstance(native_id, str | int) or isinstance(native_id, bool) or native_id == "":
        raise TypeError("the event id must be a non-empty string")
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{source}\x1fid\x1f{native_id}").hex


def event_id_hashed(source: str, data: Mapping[str, Any]) -> str:
    """The event id of a line without one: a hash of its canonical JSON (keys sorted, no
    spaces), so the same event reads the same whatever the exporter's key order."""
    canonical = orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{source}\x1fline\x1f{canonical}").hex


def reason_code(text: Any) -> str:
    """A vendor's reason kept verbatim, as a reason code: lowercase words joined by `_`,
    only the part before the first colon (what follows is usually an id or a URL), cut to
    32 characters at a word boundary. "Service not enabled within domain: https://x" →
    "service_not_enabled_within"."""
    if not isinstance(text, str):
        text = ""
    head = text.split(":", 1)[0].lower()
    words = re.findall(r"[a-z0-9]+", head)
    code = ""
    for word in words:
        candidate = f"{code}_{word}" if code else word
        if len(candidate) > _CODE_MAX:
            break
        code = candidate
    return code or (words[0][:_CODE_MAX] if words else "unknown")


# What Keyward's own token service answers for each reason (tokens/views.py): vendor logs do
# not record the status, so ingested events get the one Keyward would have sent.
_AUTHENTICATION_FAILURES = {
    Reason.BAD_SECRET,
    Reason.UNKNOWN_CLIENT,
    Reason.DISABLED_CLIENT,
    Reason.EXPIRED_SECRET,
    Reason.REVOKED_SECRET,
    Reason.IP_NOT_ALLOWED,
    Reason.INVALID_CLIENT,
}


def status_for(reason: str) -> int:
    if reason == Reason.OK:
        return 200
    if reason == Reason.RATE_LIMITED:
        return 429
    if reason == Reason.SERVER_ERROR:
        return 500
    return 401 if reason in _AUTHENTICATION_FAILURES else 400


# --- Field helpers -----------------------------------------------------------------------


def _object(value: Any, name: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be an object")
    return value


def _string(value: Any, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string")
    return value


def _scopes(value: Any, name: str) -> str:
    """Scopes as a space-separated string, from a string (spaces or commas) or a list."""
    if value is None:
        return ""
    if isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise TypeError(f"{name} must be a list of strings")
        return " ".join(value)
    return " ".join(_string(value, name).replace(",", " ").split())


def _iso_seconds(value: Any, name: str) -> float:
    """ISO 8601 (Auth0 `date`, Okta `published`) as epoch seconds; a time without a zone
    is UTC."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be an ISO 8601 date-time string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} is not an ISO 8601 date-time: {value[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _epoch_millis(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number (milliseconds since 1970)")
    return value / 1000


def _record(**fields: Any) -> TokenEventRecord:
    """A token-endpoint record, validated and cleaned like every buffer item."""
    fields.setdefault("status_code", status_for(fields["reason"]))
    return TokenEventRecord.from_dict({"endpoint": Endpoint.TOKEN, **fields})


# --- keyward ------------------------------------------------------------------------------


def keyward_map(data: Mapping[str, Any], source: str | None) -> TokenEventRecord:
    """Keyward's own JSON Lines: the record's fields (docs/events.md, JSON Schema).

    Each line keeps its own `source` unless one is given. `secret_id` names a secret of the
    Keyward that wrote the line, so it is kept only for source `keyward`.
    """
    record = TokenEventRecord.from_dict(data)
    if source is not None:
        record.source = source
    if record.source != SOURCE_KEYWARD:
        record.secret_id = None
    return record


# --- Keycloak -----------------------------------------------------------------------------

KEYCLOAK_TYPES = {"CLIENT_LOGIN": Outcome.SUCCESS, "CLIENT_LOGIN_ERROR": Outcome.FAILURE}
# Keycloak's error codes (org.keycloak.events.Errors) on the client-credentials grant.
KEYCLOAK_REASONS = {
    "invalid_client_credentials": Reason.BAD_SECRET,
    "client_not_found": Reason.UNKNOWN_CLIENT,
    "client_disabled": Reason.DISABLED_CLIENT,
    "invalid_client": Reason.INVALID_CLIENT,
    "invalid_request": Reason.INVALID_REQUEST,
    "invalid_scope": Reason.INVALID_SCOPE,
    "unauthorized_client": Reason.UNAUTHORIZED,
    "unsupported_grant_type": Reason.UNSUPPORTED_GRANT_TYPE,
}


def keycloak_map(data: Mapping[str, Any], source: str) -> TokenEventRecord:
    """A Keycloak event (EventRepresentation, as the admin events API and event-listener
    exports write it). Only CLIENT_LOGIN / CLIENT_LOGIN_ERROR of the client_credentials
    grant are token events."""
    event_type = data.get("type")
    if event_type not in KEYCLOAK_TYPES:
        raise NotATokenEvent(f"event type {str(event_type)[:40]!r}")
    details = _object(data.get("details"), "details")
    grant_type = details.get("grant_type")
    if grant_type != "client_credentials":
        raise NotATokenEvent(f"grant_type {str(grant_type)[:40]!r}")
    outcome = KEYCLOAK_TYPES[event_type]
    error = _string(data.get("error"), "error")
    if outcome == Outcome.SUCCESS:
        reason = Reason.OK
    else:
        reason = KEYCLOAK_REASONS.get(error) or reason_code(error)
    scope = _scopes(details.get("scope"), "details.scope")
    native_id = data.get("id")
    return _record(
        id=event_id_native(source, native_id) if native_id else event_id_hashed(source, data),
        occurred_at=_epoch_millis(data["time"], "time"),
        client_id=_string(data.get("clientId"), "clientId"),
        outcome=outcome,
        reason=reason,
        source_ip=_string(data.get("ipAddress"), "ipAddress") or None,
        scopes_requested=scope,
        scopes_granted=scope if outcome == Outcome.SUCCESS else "",
        jti=_string(details.get("token_id"), "details.token_id"),
        source=source,
    )


# --- Auth0 --------------------------------------------------------------------------------

AUTH0_TYPES = {"seccft": Outcome.SUCCESS, "feccft": Outcome.FAILURE}
# feccft carries no error code, only a description; first match wins (lowercased).
AUTH0_REASONS: list[tuple[re.Pattern, str]] = [
    # Auth0 answers a wrong client secret with access_denied / "Unauthorized".
    (
        re.compile(r"^unauthorized\.?$|invalid client credentials|client authentication failed"),
        Reason.BAD_SECRET,
    ),
    (re.compile(r"unknown client|client not found|invalid client_id"), Reason.UNKNOWN_CLIENT),
    (re.compile(r"too many requests|rate limit|global limit"), Reason.RATE_LIMITED),
    # No client grant for the API, or the grant type not enabled for the application:
    # OAuth's unauthorized_client, which Keyward records as `unauthorized`.
    (
        re.compile(r"not authorized to access|grant type .*not allowed|unauthorized_client"),
        Reason.UNAUTHORIZED,
    ),
    (re.compile(r"scope"), Reason.INVALID_SCOPE),
]


def _auth0_reason(description: str) -> str:
    text = description.strip().lower()
    for pattern, reason in AUTH0_REASONS:
        if pattern.search(text):
            return reason
    return reason_code(description)


def auth0_map(data: Mapping[str, Any], source: str) -> TokenEventRecord:
    """An Auth0 tenant log event: from a log stream (custom webhook, JSON Lines: each line
    `{"log_id": …, "data": {…}}`) or the Management API (`GET /api/v2/logs`, the event
    itself). Only `seccft` / `feccft` (the client-credentials exchange) are token events."""
    log_id = data.get("log_id")
    if isinstance(data.get("data"), Mapping):
        data = data["data"]
    event_type = data.get("type")
    if event_type not in AUTH0_TYPES:
        raise NotATokenEvent(f"event type {str(event_type)[:40]!r}")
    outcome = AUTH0_TYPES[event_type]
    description = _string(data.get("description"), "description")
    reason = Reason.OK if outcome == Outcome.SUCCESS else _auth0_reason(description)
    scope = _scopes(data.get("scope"), "scope")
    return _record(
        id=event_id_native(source, data.get("log_id") or log_id or data.get("_id")),
        occurred_at=_iso_seconds(data["date"], "date"),
        client_id=_string(data.get("client_id"), "client_id"),
        outcome=outcome,
        reason=reason,
        source_ip=_string(data.get("ip"), "ip") or None,
        user_agent=_string(data.get("user_agent"), "user_agent"),
        scopes_requested=scope,
        scopes_granted=scope if outcome == Outcome.SUCCESS else "",
        source=source,
    )


# --- Okta ---------------------------------------------------------------------------------

OKTA_EVENT_PREFIX = "app.oauth2.as.token.grant"
# outcome.result values that mean the token was issued; DENY, FAILURE and the rest did not.
OKTA_SUCCESS_RESULTS = {"SUCCESS", "ALLOW"}
OKTA_REASONS = {
    "invalid_client": Reason.INVALID_CLIENT,
    "invalid_scope": Reason.INVALID_SCOPE,
    "no_matching_scope": Reason.INVALID_SCOPE,
    "invalid_request": Reason.INVALID_REQUEST,
    "unauthorized_client": Reason.UNAUTHORIZED,
    "unsupported_grant_type": Reason.UNSUPPORTED_GRANT_TYPE,
    "too_many_requests": Reason.RATE_LIMITED,
}


def okta_map(data: Mapping[str, Any], source: str) -> TokenEventRecord:
    """An Okta System Log event (LogEvent, as `GET /api/v1/logs` and log streams write it).
    Only `app.oauth2.as.token.grant*` events of the client_credentials grant are token
    events; the actor is the client application."""
    event_type = _string(data.get("eventType"), "eventType")
    if not event_type.startswith(OKTA_EVENT_PREFIX):
        raise NotATokenEvent(f"event type {event_type[:40]!r}")
    debug = _object(_object(data.get("debugContext"), "debugContext").get("debugData"), "debugData")
    if debug.get("grantType") != "client_credentials":
        raise NotATokenEvent(f"grantType {str(debug.get('grantType'))[:40]!r}")
    result = _object(data.get("outcome"), "outcome")
    success = _string(result.get("result"), "outcome.result") in OKTA_SUCCESS_RESULTS
    okta_reason = _string(result.get("reason"), "outcome.reason")
    reason = Reason.OK if success else OKTA_REASONS.get(okta_reason) or reason_code(okta_reason)
    client = _object(data.get("client"), "client")
    user_agent = _object(client.get("userAgent"), "client.userAgent")
    return _record(
        id=event_id_native(source, data["uuid"]),
        occurred_at=_iso_seconds(data["published"], "published"),
        client_id=_string(_object(data.get("actor"), "actor").get("id"), "actor.id"),
        outcome=Outcome.SUCCESS if success else Outcome.FAILURE,
        reason=reason,
        source_ip=_string(client.get("ipAddress"), "client.ipAddress") or None,
        user_agent=_string(user_agent.get("rawUserAgent"), "client.userAgent.rawUserAgent"),
        scopes_requested=_scopes(debug.get("requestedScopes"), "requestedScopes"),
        scopes_granted=_scopes(debug.get("grantedScopes"), "grantedScopes") if success else "",
        jti=_okta_token_id(data.get("target")),
        source=source,
    )


def _okta_token_id(targets: Any) -> str:
    """The issued access token's id (its `jti`), from the target of type access_token."""
    if not isinstance(targets, list):
        return ""
    for target in targets:
        if isinstance(target, Mapping) and target.get("type") == "access_token":
            return _string(target.get("id"), "target.id")
    return ""


# --- The registry -------------------------------------------------------------------------


@dataclass(frozen=True)
class LogFormat:
    name: str
    map: Callable[[Mapping[str, Any], Any], TokenEventRecord]
    # The source of its events when none is given; None: each line's own (keyward).
    default_source: str | None


FORMATS: dict[str, LogFormat] = {
    "keyward": LogFormat("keyward", keyward_map, None),
    "keycloak": LogFormat("keycloak", keycloak_map, "keycloak"),
    "auth0": LogFormat("auth0", auth0_map, "auth0"),
    "okta": LogFormat("okta", okta_map, "okta"),
}
