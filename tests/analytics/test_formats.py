"""Each log format mapped onto the event record: valid, malformed and truncated lines.

Mapping touches no database; these tests read lines the way ingestion does
(`log_line_map`), so a refusal here is exactly what `ingest_logs` and the endpoint report.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import json
import uuid
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.formats import FORMATS, NotATokenEvent, event_id_native, reason_code
from analytics.ingestion import LineRefused, log_line_map
from audit.events import REDACTED_CLIENT_ID, TokenEventRecord
from tests.analytics.conftest import SAMPLE_FILES, sample_objects


def mapped(data: dict, log_format: str, source: str | None = "") -> TokenEventRecord:
    if source == "":
        source = FORMATS[log_format].default_source
    return log_line_map(orjson.dumps(data), log_format=log_format, source=source)


def refusal(data, log_format: str) -> str:
    line = data if isinstance(data, bytes) else orjson.dumps(data)
    with pytest.raises(LineRefused) as caught:
        log_line_map(line, log_format=log_format, source=FORMATS[log_format].default_source)
    return str(caught.value)


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


KEYCLOAK_OK = {
    "id": "0d9c5a4e-6d0f-4a53-9c1e-0b7a8f2e1c33",
    "time": 1764748800123,
    "type": "CLIENT_LOGIN",
    "realmId": "acme",
    "clientId": "orders-service",
    "userId": "5f6a7b8c-0000-4000-8000-000000000001",
    "ipAddress": "10.20.1.14",
    "details": {
        "grant_type": "client_credentials",
        "scope": "orders:read profile",
        "client_auth_method": "client-secret",
        "username": "service-account-orders-service",
        "token_id": "a1b2c3d4-e5f6-4711-8899-aabbccddeeff",
    },
}
AUTH0_OK = {
    "log_id": "90020261203080000123000000000000000000000000000000000001",
    "data": {
        "date": "2026-12-03T08:00:00.123Z",
        "type": "seccft",
        "description": "",
        "client_id": "AaiyAPdpYdesoKnqjj8HJqRn4T5titww",
        "client_name": "Inventory Sync (M2M)",
        "ip": "34.89.12.7",
        "user_agent": "axios/1.7.2",
        "hostname": "acme.eu.auth0.com",
        "audience": "https://api.acme.example",
        "scope": "read:stock write:stock",
        "log_id": "90020261203080000123000000000000000000000000000000000001",
    },
}
OKTA_OK = {
    "uuid": "6a1e9a52-9c2f-11ef-8a3b-1d2c3b4a5f60",
    "published": "2026-12-03T08:00:00.123Z",
    "eventType": "app.oauth2.as.token.grant.access_token",
    "actor": {"id": "0oa8f5j3ecb5w3dF35d7", "type": "PublicClientApp", "displayName": "Sync"},
    "client": {"ipAddress": "52.28.14.9", "userAgent": {"rawUserAgent": "python-requests/2.32.3"}},
    "outcome": {"result": "SUCCESS", "reason": None},
    "debugContext": {
        "debugData": {
            "grantType": "client_credentials",
            "requestedScopes": "inventory.read inventory.write",
            "grantedScopes": "inventory.read inventory.write",
        }
    },
    "target": [
        {"id": "AT.x1y2z3", "type": "access_token", "displayName": "Access Token"},
        {"id": "aus1a2b3c4d5e6f7g8h9", "type": "AuthorizationServer"},
    ],
}
KEYWARD_OK = {
    "id": "5f0c8d6e4a0b4b6e9a1f2d3c4b5a6978",
    "occurred_at": 1764748800.5,
    "endpoint": "token",
    "client_id": "Xw3kP9sLq2VmN7bR4tYc8HdF",
    "client_known": True,
    "secret_id": 17,
    "outcome": "success",
    "reason": "ok",
    "source_ip": "10.1.2.3",
    "scopes_requested": "orders:read",
    "scopes_granted": "orders:read",
    "jti": "9b1d0000000000000000000000000000",
    "status_code": 200,
    "duration_ms": 1.8,
}
VALID = {"keycloak": KEYCLOAK_OK, "auth0": AUTH0_OK, "okta": OKTA_OK, "keyward": KEYWARD_OK}


def changed(base: dict, path: str, value) -> dict:
    """A deep copy of `base` with the dotted `path` set to `value` (or removed: ...)."""
    data = copy.deepcopy(base)
    *parents, last = path.split(".")
    target = data
    for key in parents:
        target = target[key]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return data


class TestKeycloak:
    def test_it_maps_a_client_credentials_login(self):
        record = mapped(KEYCLOAK_OK, "keycloak")
        assert record.id == event_id_native("keycloak", KEYCLOAK_OK["id"])
        assert record.occurred_at == pytest.approx(1764748800.123)
        assert (record.endpoint, record.outcome, record.reason) == ("token", "success", "ok")
        assert (record.client_id, record.source_ip, record.source) == (
            "orders-service",
            "10.20.1.14",
            "keycloak",
        )
        assert record.scopes_requested == record.scopes_granted == "orders:read profile"
        assert record.jti == "a1b2c3d4-e5f6-4711-8899-aabbccddeeff"
        assert (record.status_code, record.secret_id, record.client_known) == (200, None, False)

    @pytest.mark.parametrize(
        ("error", "reason", "status"),
        [
            ("invalid_client_credentials", "bad_secret", 401),
            ("client_not_found", "unknown_client", 401),
            ("client_disabled", "disabled_client", 401),
            ("invalid_client", "invalid_client", 401),
            ("invalid_request", "invalid_request", 400),
            ("unauthorized_client", "unauthorized", 400),
            ("realm_disabled", "realm_disabled", 400),  # no Keyward code: kept verbatim
        ],
    )
    def test_it_maps_each_error_to_a_reason(self, error, reason, status):
        data = changed(changed(KEYCLOAK_OK, "type", "CLIENT_LOGIN_ERROR"), "error", error)
        record = mapped(data, "keycloak")
        assert (record.outcome, record.reason, record.status_code) == ("failure", reason, status)
        assert record.scopes_granted == ""

    @pytest.mark.parametrize(
        "data",
        [
            changed(KEYCLOAK_OK, "type", "LOGIN"),
            changed(KEYCLOAK_OK, "type", "CODE_TO_TOKEN"),
            changed(KEYCLOAK_OK, "details.grant_type", "password"),
            changed(KEYCLOAK_OK, "details.grant_type", ...),
        ],
        ids=["user-login", "code-to-token", "password-grant", "no-grant-type"],
    )
    def test_it_skips_what_is_not_a_client_credentials_token_event(self, data):
        with pytest.raises(NotATokenEvent):
            mapped(data, "keycloak")

    def test_it_hashes_a_line_without_an_id_the_same_whatever_the_key_order(self):
        data = changed(KEYCLOAK_OK, "id", ...)
        reordered = dict(reversed(list(data.items())))
        assert mapped(data, "keycloak").id == mapped(reordered, "keycloak").id
        assert mapped(data, "keycloak").id != mapped(changed(data, "time", 1), "keycloak").id

    @pytest.mark.parametrize(
        ("data", "words"),
        [
            (changed(KEYCLOAK_OK, "time", ...), "missing field 'time'"),
            (changed(KEYCLOAK_OK, "time", "yesterday"), "time must be a number"),
            (changed(KEYCLOAK_OK, "details", "oops"), "details must be an object"),
            (changed(KEYCLOAK_OK, "ipAddress", "10.20.1.999"), "does not appear to be"),
            (changed(KEYCLOAK_OK, "clientId", 42), "clientId must be a string"),
        ],
    )
    def test_it_refuses_a_malformed_line_saying_why(self, data, words):
        assert words in refusal(data, "keycloak")


class TestAuth0:
    def test_it_maps_a_log_stream_record(self):
        record = mapped(AUTH0_OK, "auth0")
        assert record.id == event_id_native("auth0", AUTH0_OK["log_id"])
        assert record.occurred_at == pytest.approx(epoch("2026-12-03T08:00:00.123"))
        assert (record.client_id, record.source_ip, record.user_agent) == (
            "AaiyAPdpYdesoKnqjj8HJqRn4T5titww",
            "34.89.12.7",
            "axios/1.7.2",
        )
        assert record.scopes_granted == "read:stock write:stock"
        assert (record.outcome, record.reason, record.source) == ("success", "ok", "auth0")

    def test_it_maps_a_management_api_record_the_same(self):
        assert mapped(AUTH0_OK["data"], "auth0") == mapped(AUTH0_OK, "auth0")

    def test_it_reads_scopes_given_as_a_list(self):
        data = changed(AUTH0_OK, "data.scope", ["read:stock", "write:stock"])
        assert mapped(data, "auth0").scopes_requested == "read:stock write:stock"

    @pytest.mark.parametrize(
        ("description", "reason"),
        [
            ("Unauthorized", "bad_secret"),
            ('Client is not authorized to access "https://api.acme.example".', "unauthorized"),
            ("Grant type 'client_credentials' not allowed for the client.", "unauthorized"),
            ("Client has not been granted scopes: write:reports", "invalid_scope"),
            ("Too Many Requests", "rate_limited"),
            ("Service not enabled within domain: https://x.example", "service_not_enabled_within"),
            ("", "unknown"),
        ],
    )
    def test_it_maps_each_failure_description_to_a_reason(self, description, reason):
        data = changed(changed(AUTH0_OK, "data.type", "feccft"), "data.description", description)
        record = mapped(data, "auth0")
        assert (record.outcome, record.reason, record.scopes_granted) == ("failure", reason, "")

    @pytest.mark.parametrize("event_type", ["s", "f", "seacft", "sapi", None])
    def test_it_skips_other_event_types(self, event_type):
        with pytest.raises(NotATokenEvent):
            mapped(changed(AUTH0_OK, "data.type", event_type), "auth0")

    @pytest.mark.parametrize(
        ("data", "words"),
        [
            (changed(AUTH0_OK, "data.date", "03/12/2026"), "not an ISO 8601 date-time"),
            (changed(AUTH0_OK, "data.date", ...), "missing field 'date'"),
            (changed(changed(AUTH0_OK, "data.log_id", ...), "log_id", ...), "event id"),
            (changed(AUTH0_OK, "data.scope", [1, 2]), "scope must be a list of strings"),
        ],
    )
    def test_it_refuses_a_malformed_line_saying_why(self, data, words):
        assert words in refusal(data, "auth0")


class TestOkta:
    def test_it_maps_a_client_credentials_grant(self):
        record = mapped(OKTA_OK, "okta")
        assert record.id == event_id_native("okta", OKTA_OK["uuid"])
        assert record.client_id == "0oa8f5j3ecb5w3dF35d7"
        assert (record.source_ip, record.user_agent) == ("52.28.14.9", "python-requests/2.32.3")
        assert record.scopes_requested == record.scopes_granted == "inventory.read inventory.write"
        assert (record.jti, record.outcome, record.reason) == ("AT.x1y2z3", "success", "ok")

    @pytest.mark.parametrize(
        ("result", "okta_reason", "reason"),
        [
            ("FAILURE", "no_matching_scope", "invalid_scope"),
            ("FAILURE", "invalid_client", "invalid_client"),
            ("FAILURE", "unauthorized_client", "unauthorized"),
            ("FAILURE", "too_many_requests", "rate_limited"),
            ("DENY", "access_denied", "access_denied"),  # a policy denial: kept verbatim
            (
                "FAILURE",
                "Policy evaluation failed for this request",
                "policy_evaluation_failed_for",
            ),
            ("FAILURE", None, "unknown"),
        ],
    )
    def test_it_maps_each_failure_reason(self, result, okta_reason, reason):
        data = changed(OKTA_OK, "eventType", "app.oauth2.as.token.grant")
        data = changed(changed(data, "outcome.result", result), "outcome.reason", okta_reason)
        record = mapped(data, "okta")
        assert (record.outcome, record.reason, record.scopes_granted) == ("failure", reason, "")
        assert record.scopes_requested == "inventory.read inventory.write"

    @pytest.mark.parametrize(
        "data",
        [
            changed(OKTA_OK, "eventType", "user.session.start"),
            changed(OKTA_OK, "debugContext.debugData.grantType", "authorization_code"),
            changed(OKTA_OK, "debugContext", ...),
        ],
        ids=["session", "authorization-code", "no-debug-context"],
    )
    def test_it_skips_other_events_and_grants(self, data):
        with pytest.raises(NotATokenEvent):
            mapped(data, "okta")

    @pytest.mark.parametrize(
        ("data", "words"),
        [
            (changed(OKTA_OK, "uuid", ...), "missing field 'uuid'"),
            (changed(OKTA_OK, "published", 1764748800), "published must be an ISO 8601"),
            (changed(OKTA_OK, "client", ["52.28.14.9"]), "client must be an object"),
            (changed(OKTA_OK, "eventType", 7), "eventType must be a string"),
        ],
    )
    def test_it_refuses_a_malformed_line_saying_why(self, data, words):
        assert words in refusal(data, "okta")


class TestKeyward:
    def test_it_reads_the_record_as_written(self):
        record = mapped(KEYWARD_OK, "keyward", source=None)
        assert record == TokenEventRecord.from_dict(KEYWARD_OK)
        assert (record.source, record.secret_id) == ("keyward", 17)

    def test_it_keeps_a_line_s_own_source_and_drops_its_secret_id(self):
        record = mapped(changed(KEYWARD_OK, "source", "keyward-staging"), "keyward", source=None)
        assert (record.source, record.secret_id) == ("keyward-staging", None)

    def test_a_given_source_overrides_the_line_s(self):
        record = mapped(KEYWARD_OK, "keyward", source="keyward-eu")
        assert (record.source, record.secret_id) == ("keyward-eu", None)

    def test_it_redacts_a_secret_pasted_as_client_id(self):
        data = changed(KEYWARD_OK, "client_id", "kwsec_" + "x" * 43)
        assert mapped(data, "keyward", source=None).client_id == REDACTED_CLIENT_ID

    @pytest.mark.parametrize(
        ("data", "words"),
        [
            (changed(KEYWARD_OK, "status_code", ...), "missing field 'status_code'"),
            (changed(KEYWARD_OK, "endpoint", "authorize"), "unknown value"),
            (changed(KEYWARD_OK, "id", "not-a-uuid"), "badly formed hexadecimal UUID"),
        ],
    )
    def test_it_refuses_a_malformed_line_saying_why(self, data, words):
        assert words in refusal(data, "keyward")


@pytest.mark.parametrize("log_format", sorted(VALID))
class TestEveryFormat:
    def test_it_refuses_every_truncation_of_a_valid_line(self, log_format):
        line = orjson.dumps(VALID[log_format])
        for cut in range(1, len(line)):
            with pytest.raises(LineRefused, match="not valid JSON, or cut short"):
                log_line_map(line[:cut], log_format=log_format, source="x")

    @pytest.mark.parametrize(
        "line",
        [b"[1, 2]", b'"a string"', b"null", b"\xff\xfe{}", b"{'single': 'quotes'}", b"{}"],
    )
    def test_it_refuses_what_is_not_an_event_object(self, log_format, line):
        try:
            log_line_map(line, log_format=log_format, source="x")
        except NotATokenEvent:
            assert line == b"{}"  # an empty object is no event of the vendor formats
        except LineRefused:
            pass
        else:
            pytest.fail(f"{line!r} was accepted")

    def test_it_gives_the_same_line_the_same_id_and_another_source_another(self, log_format):
        source = FORMATS[log_format].default_source or "keyward"
        first = mapped(VALID[log_format], log_format, source=source)
        again = mapped(VALID[log_format], log_format, source=source)
        other = mapped(VALID[log_format], log_format, source="elsewhere")
        assert first.id == again.id
        assert uuid.UUID(first.id)
        if log_format != "keyward":  # Keyward's own lines carry their id
            assert other.id != first.id

    @settings(max_examples=300, deadline=None)
    @given(data=st.data())
    def test_it_never_fails_but_by_refusing_or_skipping_fuzzed_fields(self, log_format, data):
        path = data.draw(st.sampled_from(_paths(VALID[log_format])))
        value = data.draw(JSON_VALUES)
        # Python's encoder: it writes integers of any size, which the reader must refuse.
        line = json.dumps(changed(VALID[log_format], path, value)).encode()
        with contextlib.suppress(NotATokenEvent, LineRefused):
            log_line_map(line, log_format=log_format, source="fuzz")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)


def _paths(data: dict, prefix: str = "") -> list[str]:
    """Every dotted path into `data`'s objects (not into lists)."""
    paths = []
    for key, value in data.items():
        paths.append(prefix + key)
        if isinstance(value, dict):
            paths += _paths(value, f"{prefix}{key}.")
    return paths


class TestTheSamples:
    """docs/samples/: the counts docs/events.md states for each file."""

    EXPECTED = {
        "keycloak": {"success": 14, "skipped": 3, "failure": 14, "malformed": 1},
        "auth0": {"success": 11, "skipped": 3, "failure": 12, "malformed": 1},
        "okta": {"success": 10, "skipped": 2, "failure": 10, "malformed": 1},
        "keyward": {"success": 9, "failure": 12, "malformed": 1},
    }

    @pytest.mark.parametrize("log_format", sorted(EXPECTED))
    def test_each_sample_has_successes_failures_skips_and_one_malformed_line(self, log_format):
        counts = collections.Counter()
        for line in SAMPLE_FILES[log_format].read_bytes().splitlines():
            try:
                record = log_line_map(line, log_format=log_format, source="sample")
            except NotATokenEvent:
                counts["skipped"] += 1
            except LineRefused:
                counts["malformed"] += 1
            else:
                counts[record.outcome] += 1
        assert counts == self.EXPECTED[log_format]

    @pytest.mark.parametrize("log_format", ["keycloak", "auth0", "okta"])
    def test_each_vendor_sample_names_clients_keyward_does_not_know(self, log_format):
        client_ids = set()
        for data in sample_objects(log_format):
            try:
                client_ids.add(mapped(data, log_format).client_id)
            except NotATokenEvent:
                continue
        assert len(client_ids) >= 4


def test_reason_code_keeps_a_vendor_reason_as_a_short_code():
    assert (
        reason_code("Service not enabled within domain: https://x") == "service_not_enabled_within"
    )
    assert reason_code("invalid_client") == "invalid_client"
    assert reason_code("x" * 50) == "x" * 32
    assert reason_code(None) == reason_code("") == reason_code("!!!") == "unknown"
