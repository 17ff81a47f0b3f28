"""The explorer's CSV and NDJSON exports: same filters as the page, streamed in keyset chunks."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from analytics.explorer import EXPORT_CHUNK, EXPORT_FIELDS
from analytics.models import TokenEvent
from tests.analytics.conftest import BASE_TIME

CSV_URL = reverse("analytics:events_csv")
NDJSON_URL = reverse("analytics:events_ndjson")


def body(response) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode()


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body(response))))


def event_queries(queries) -> list[str]:
    table = TokenEvent._meta.db_table
    return [q["sql"] for q in queries if f'FROM "{table}"' in q["sql"]]


class TestCsvExport:
    def test_it_streams_every_field_with_a_filename(self, viewer_client, make_event):
        event = make_event(client_id="billing-svc", source_ip="2001:db8::1", secret_id=7)
        response = viewer_client.get(CSV_URL)
        assert response.status_code == 200
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert response["Content-Disposition"].startswith('attachment; filename="keyward-events-')
        assert response["Content-Disposition"].endswith('.csv"')
        header, row = csv_rows(response)
        assert header == list(EXPORT_FIELDS)
        record = dict(zip(header, row, strict=True))
        assert record["occurred_at"] == "2026-11-30T12:00:00Z"
        assert record["client_id"] == "billing-svc"
        assert record["source_ip"] == "2001:db8::1"
        assert record["secret_id"] == "7"
        assert record["client_known"] == "false"
        assert record["id"] == str(event.id)

    def test_it_applies_the_page_filters(self, viewer_client, make_event):
        make_event(jti="a", outcome="failure", reason="bad_secret", source_ip="10.9.0.1")
        make_event(jti="b", outcome="failure", reason="bad_secret", source_ip="192.168.0.1")
        make_event(jti="c")
        rows = csv_rows(viewer_client.get(CSV_URL, {"outcome": "failure", "ip": "10.0.0.0/8"}))
        assert [row[EXPORT_FIELDS.index("jti")] for row in rows[1:]] == ["a"]

    def test_it_neutralises_spreadsheet_formulas(self, viewer_client, make_event):
        make_event(client_id='=HYPERLINK("http://evil")', user_agent="@SUM(A1)", jti="-1+1")
        _header, row = csv_rows(viewer_client.get(CSV_URL))
        record = dict(zip(EXPORT_FIELDS, row, strict=True))
        assert record["client_id"] == '\'=HYPERLINK("http://evil")'
        assert record["user_agent"] == "'@SUM(A1)"
        assert record["jti"] == "'-1+1"

    def test_it_answers_bad_filters_with_400(self, viewer_client):
        response = viewer_client.get(CSV_URL, {"ip": "not-an-ip"})
        assert response.status_code == 400
        assert "ip:" in response.content.decode()


class TestLargeExport:
    """More rows than one chunk: read in keyset chunks, streamed as they are read."""

    COUNT = EXPORT_CHUNK * 2 + 17

    @pytest.fixture
    def many(self, make_events):
        return make_events(self.COUNT)

    def test_it_reads_one_chunk_per_query_and_never_offsets(self, viewer_client, many):
        response = viewer_client.get(CSV_URL)
        with CaptureQueriesContext(connection) as queries:
            rows = csv_rows(response)
        assert len(rows) == self.COUNT + 1
        sql = event_queries(queries)
        assert len(sql) == 3  # 2000 + 2000 + 17
        assert all(f"LIMIT {EXPORT_CHUNK}" in query for query in sql)
        assert not any("OFFSET" in query.upper() for query in sql)

    def test_it_sends_the_first_rows_before_reading_the_rest(self, viewer_client, many):
        response = viewer_client.get(NDJSON_URL)
        stream = iter(response.streaming_content)
        with CaptureQueriesContext(connection) as queries:
            first = json.loads(next(stream))
        assert len(event_queries(queries)) == 1
        assert first["occurred_at"] == "2026-11-30T12:00:00Z"
        with CaptureQueriesContext(connection) as queries:
            rest = [json.loads(line) for line in stream]
        assert len(event_queries(queries)) == 2
        times = [first["occurred_at"], *(record["occurred_at"] for record in rest)]
        assert len(set(times)) == self.COUNT  # no row twice, none missing
        assert times == sorted(times, reverse=True)


class TestNdjsonExport:
    def test_it_writes_one_json_object_per_line(self, viewer_client, make_event):
        make_event(jti="newer", client_id="ünïcode")
        make_event(jti="older", occurred_at=BASE_TIME - timedelta(seconds=1), source_ip=None)
        response = viewer_client.get(NDJSON_URL)
        assert response.status_code == 200
        assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"
        assert response["Content-Disposition"].endswith('.ndjson"')
        lines = body(response).splitlines()
        records = [json.loads(line) for line in lines]
        assert [record["jti"] for record in records] == ["newer", "older"]
        assert list(records[0]) == list(EXPORT_FIELDS)
        assert records[0]["client_id"] == "ünïcode"
        assert records[0]["client_known"] is False
        assert records[1]["source_ip"] is None

    def test_it_applies_the_page_filters(self, viewer_client, make_event):
        make_event(jti="kc", source="keycloak")
        make_event(jti="kw")
        records = [
            json.loads(line)
            for line in body(viewer_client.get(NDJSON_URL, {"source": "keycloak"})).splitlines()
        ]
        assert [record["jti"] for record in records] == ["kc"]
