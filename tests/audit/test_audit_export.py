from __future__ import annotations

import csv
import io
import json

from django.http import StreamingHttpResponse
from django.urls import reverse

from audit.services import Actor, admin_action_record
from audit.views import CSV_COLUMNS

URL = reverse("audit:export")


def rows(response) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse)
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


class TestAuditExport:
    def test_it_streams_every_column(self, viewer_client):
        admin_action_record(
            actor=Actor(label="ada-admin", ip="10.1.2.3", user_agent="Firefox"),
            action="client.update",
            target_type="client",
            target_id="abc",
            target_label="Billing",
            before={"environment": "development"},
            after={"environment": "production"},
        )
        response = viewer_client.get(URL)
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        assert "attachment" in response["Content-Disposition"]
        header, row = rows(response)
        assert header == list(CSV_COLUMNS)
        assert row[1:6] == ["ada-admin", "client.update", "client", "abc", "Billing"]
        assert json.loads(row[6]) == {"environment": "development"}
        assert json.loads(row[7]) == {"environment": "production"}
        assert row[8:] == ["10.1.2.3", "Firefox"]

    def test_it_applies_the_page_filters(self, viewer_client):
        for action in ("client.register", "scope.create"):
            admin_action_record(actor=Actor.cli(), action=action, target_type="x", target_id="1")
        exported = rows(viewer_client.get(URL, {"action": "scope.create"}))
        assert [row[2] for row in exported[1:]] == ["scope.create"]

    def test_it_neutralises_spreadsheet_formulas(self, viewer_client):
        admin_action_record(
            actor=Actor(label="@evil"),
            action="client.register",
            target_type="client",
            target_id="-abc",
            target_label='=HYPERLINK("http://x")',
            after={"name": "+1"},
        )
        _header, row = rows(viewer_client.get(URL))
        assert row[1] == "'@evil"
        assert row[4] == "'-abc"
        assert row[5] == '\'=HYPERLINK("http://x")'
        assert row[7] == '{"name": "+1"}'  # starts with "{": safe as is

    def test_it_never_contains_a_secret(self, viewer_client, make_client):
        _client, secret = make_client("Billing")
        body = b"".join(viewer_client.get(URL).streaming_content).decode()
        assert "secret.create" in body and secret not in body

    def test_it_needs_a_login(self, anonymous_client):
        assert anonymous_client.get(URL).status_code == 302

    def test_it_refuses_post(self, admin_client):
        assert admin_client.post(URL).status_code == 405
