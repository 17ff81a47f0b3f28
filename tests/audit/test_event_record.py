"""The token-event record (audit/events.py) and the schema docs/events.md shows."""

from __future__ import annotations

import io
import json
import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import orjson
import pytest
from django.conf import settings
from django.core.management import call_command

from analytics.models import TokenEvent
from analytics.store import record_as_model
from audit.events import COLUMNS, TokenEventRecord, token_event_json_schema

DOC = Path(settings.BASE_DIR) / "docs" / "events.md"
SCHEMA_BLOCK = re.compile(
    r"<!-- token-event-schema: begin -->\n```json\n(.*?)\n```\n<!-- token-event-schema: end -->",
    re.DOTALL,
)


def record(**fields) -> TokenEventRecord:
    """A successful token request; `fields` override."""
    defaults = {
        "id": uuid.uuid4().hex,
        "occurred_at": time.time(),
        "endpoint": TokenEvent.Endpoint.TOKEN,
        "client_id": "svc-orders",
        "client_known": True,
        "secret_id": 17,
        "outcome": TokenEvent.Outcome.SUCCESS,
        "reason": TokenEvent.Reason.OK,
        "source_ip": "2001:db8::1",
        "user_agent": "python-requests/2.32",
        "scopes_requested": "orders:read",
        "scopes_granted": "orders:read",
        "jti": uuid.uuid4().hex,
        "status_code": 200,
        "duration_ms": 1.25,
    }
    return TokenEventRecord(**(defaults | fields))


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        token_event_json_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


class TestTokenEventRecord:
    def test_it_has_the_columns_of_the_table_in_order(self):
        assert list(COLUMNS) == [f.name for f in TokenEvent._meta.concrete_fields]

    def test_it_round_trips_through_the_buffer(self):
        event = record()
        assert TokenEventRecord.from_buffer(event.to_buffer()) == event

    def test_it_encodes_every_field_as_plain_json(self):
        event = record()
        assert orjson.loads(event.to_buffer()) == vars(event)

    def test_it_becomes_a_row_and_a_model(self):
        event = record(occurred_at=1764150000.5)
        model = record_as_model(event)
        assert model.id == uuid.UUID(event.id)
        assert model.occurred_at == datetime(2025, 11, 26, 9, 40, 0, 500000, tzinfo=UTC)
        assert (model.client_id, model.secret_id, model.source_ip) == (
            "svc-orders",
            17,
            "2001:db8::1",
        )
        assert event.as_row()[COLUMNS.index("duration_ms")] == 1.25

    def test_it_encodes_the_rate_limited_form_as_the_rewritten_record_encodes(self):
        event = record(scopes_granted="a b", jti="j" * 22, subject_client_id="other")
        assert event.to_buffer_rate_limited() == event.as_rate_limited().to_buffer()
        assert event.to_buffer() != event.to_buffer_rate_limited()

    def test_it_rewrites_a_rate_limited_request_into_a_new_record(self):
        event = record()
        limited = event.as_rate_limited()
        assert (limited.outcome, limited.reason, limited.status_code) == (
            "failure",
            "rate_limited",
            429,
        )
        assert (limited.jti, limited.scopes_granted) == ("", "")
        assert (limited.id, limited.client_id, limited.scopes_requested) == (
            event.id,
            event.client_id,
            event.scopes_requested,
        )
        assert event.status_code == 200  # unchanged

    def test_it_fills_defaults_for_what_a_source_does_not_know(self):
        minimal = {
            "id": str(uuid.uuid4()),
            "occurred_at": 1764150000,
            "endpoint": "token",
            "outcome": "failure",
            "reason": "bad_secret",
            "status_code": 401,
        }
        event = TokenEventRecord.from_dict(minimal)
        assert (event.client_id, event.client_known, event.secret_id, event.source_ip) == (
            "",
            False,
            None,
            None,
        )
        assert event.id == uuid.UUID(minimal["id"]).hex


class TestFromDict:
    @pytest.mark.parametrize(
        "change",
        [
            {"id": "not-a-uuid"},
            {"id": 5},
            {"occurred_at": "1764150000"},
            {"occurred_at": 1e20},
            {"occurred_at": True},
            {"endpoint": "authorize"},
            {"outcome": "maybe"},
            {"reason": ""},
            {"reason": "x" * 33},
            {"reason": "é"},
            {"secret_id": True},
            {"secret_id": 2**63},
            {"source_ip": "999.1.1.1"},
            {"source_ip": 5},
            {"status_code": "200"},
            {"status_code": 40000},
            {"client_id": 7},
            {"duration_ms": "fast"},
        ],
    )
    def test_it_refuses_what_the_table_cannot_hold(self, change):
        with pytest.raises((TypeError, ValueError)):
            TokenEventRecord.from_dict(vars(record()) | change)

    def test_it_refuses_a_missing_required_key(self):
        data = vars(record())
        del data["outcome"]
        with pytest.raises(KeyError):
            TokenEventRecord.from_dict(data)

    def test_it_cleans_strings_and_normalises_the_address(self):
        event = TokenEventRecord.from_dict(
            vars(record()) | {"user_agent": "a\x00b" + "x" * 400, "source_ip": "2001:DB8:0::1"}
        )
        assert event.user_agent == "ab" + "x" * 298
        assert event.source_ip == "2001:db8::1"

    def test_it_reads_json_that_orjson_refuses(self):
        raw = json.dumps(vars(record(user_agent="a\ud800b")))
        assert TokenEventRecord.from_buffer(raw).user_agent == "a?b"

    def test_it_refuses_a_buffer_item_that_is_not_an_object(self):
        with pytest.raises(TypeError):
            TokenEventRecord.from_buffer(b"[1, 2]")


class TestJsonSchema:
    def test_the_doc_shows_the_generated_schema(self):
        match = SCHEMA_BLOCK.search(DOC.read_text())
        assert match, "docs/events.md lost its token-event-schema block"
        assert json.loads(match.group(1)) == token_event_json_schema(), (
            "docs/events.md is out of date: paste `python manage.py token_event_schema` "
            "between the token-event-schema markers"
        )

    def test_the_command_prints_it(self):
        out = io.StringIO()
        call_command("token_event_schema", stdout=out)
        assert json.loads(out.getvalue()) == token_event_json_schema()

    def test_it_is_a_valid_draft_2020_12_schema(self):
        jsonschema.Draft202012Validator.check_schema(token_event_json_schema())

    def test_it_requires_exactly_the_fields_without_a_default(self):
        schema = token_event_json_schema()
        assert list(schema["properties"]) == list(COLUMNS)
        assert schema["required"] == [
            "id",
            "occurred_at",
            "endpoint",
            "outcome",
            "reason",
            "status_code",
        ]

    @pytest.mark.parametrize(
        "event",
        [
            record(),
            record().as_rate_limited(),
            record(secret_id=None, source_ip=None, client_known=False, reason="unknown_client"),
            record(source_ip="203.0.113.7", endpoint="introspect", id=str(uuid.uuid4())),
        ],
    )
    def test_records_validate_against_it(self, event):
        validator().validate(orjson.loads(event.to_buffer()))

    @pytest.mark.parametrize(
        "change",
        [
            {"endpoint": "authorize"},
            {"source_ip": "999.1.1.1"},
            {"status_code": "200"},
            {"user_agent": "x" * 301},
            {"extra": 1},
        ],
    )
    def test_it_refuses_what_the_record_does_not_allow(self, change):
        assert not validator().is_valid(orjson.loads(record().to_buffer()) | change)

    def test_the_doc_example_validates(self):
        example = re.search(r"Example:\n\n```json\n(.*?)\n```", DOC.read_text(), re.DOTALL)
        validator().validate(json.loads(example.group(1)))
