"""manage.py ingest_logs against real PostgreSQL: the documented samples, gzip and stdin,
refused lines, the retention window, idempotent re-ingestion.

Transactional: every batch commits on its own (the store refuses to run nested)."""

from __future__ import annotations

import collections
import gzip
import io
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from analytics.models import TokenEvent
from clients.models import Client
from tests.analytics.conftest import SAMPLE_FILES

pytestmark = pytest.mark.django_db(transaction=True)


def ingest(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("ingest_logs", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def summary(out: str) -> dict[str, int]:
    """{"read": …, "ingested": …} from the command's summary line."""
    counts = {}
    for part in out.split("(")[0].split(","):
        name, value = part.split()
        counts[name] = int(value)
    return counts


def keycloak_line(*, at: float, client: str = "orders-service", error: str | None = None) -> dict:
    event = {
        "id": str(uuid.uuid4()),
        "time": int(at * 1000),
        "type": "CLIENT_LOGIN_ERROR" if error else "CLIENT_LOGIN",
        "clientId": client,
        "ipAddress": "10.0.0.7",
        "details": {"grant_type": "client_credentials", "scope": "orders:read"},
    }
    if error:
        event["error"] = error
    return event


def write_lines(path: Path, lines: list, *, compress: bool = False) -> Path:
    data = b"".join(
        (line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n" for line in lines
    )
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


# Per sample: (read, ingested, rejected, skipped, the refused line) — docs/events.md.
SAMPLES = {
    "keycloak": (32, 28, 1, 3, 21),
    "auth0": (27, 23, 1, 3, 13),
    "okta": (23, 20, 1, 2, 15),
    "keyward": (22, 21, 1, 0, 10),
}


@pytest.mark.parametrize("log_format", sorted(SAMPLES))
class TestTheSamples:
    def test_it_ingests_a_sample_once_however_often_it_runs(self, log_format):
        read, ingested, rejected, skipped, bad_line = SAMPLES[log_format]
        path = str(SAMPLE_FILES[log_format])

        out, err = ingest(path, "--format", log_format, "--shift-to-now")
        assert summary(out) == {
            "read": read,
            "ingested": ingested,
            "duplicates": 0,
            "rejected": rejected,
            "skipped": skipped,
        }
        assert err.startswith(f"line {bad_line}: ")
        rows = list(TokenEvent.objects.all())
        assert len(rows) == ingested

        out, _err = ingest(path, "--format", log_format, "--shift-to-now")
        assert summary(out)["ingested"] == 0
        assert summary(out)["duplicates"] == ingested
        assert TokenEvent.objects.count() == ingested
        assert list(TokenEvent.objects.all()) == rows

    def test_it_reads_the_sample_gzipped_as_the_same_events(self, log_format, tmp_path):
        path = SAMPLE_FILES[log_format]
        ingest(str(path), "--format", log_format, "--shift-to-now")
        gz = tmp_path / (path.name + ".gz")
        gz.write_bytes(gzip.compress(path.read_bytes()))
        out, _err = ingest(str(gz), "--format", log_format, "--shift-to-now")
        assert summary(out)["duplicates"] == SAMPLES[log_format][1]
        assert summary(out)["ingested"] == 0


class TestWhatTheRowsSay:
    def test_vendor_events_keep_their_source_and_reason(self):
        ingest(str(SAMPLE_FILES["keycloak"]), "--format", "keycloak", "--shift-to-now")
        rows = TokenEvent.objects.all()
        assert {row.source for row in rows} == {"keycloak"}
        reasons = collections.Counter(rows.values_list("reason", flat=True))
        assert reasons == {
            "ok": 14,
            "unknown_client": 5,
            "bad_secret": 4,
            "invalid_request": 1,
            "disabled_client": 1,
            "invalid_client": 1,
            "realm_disabled": 1,
            "unauthorized": 1,
        }
        assert not rows.filter(secret_id__isnull=False).exists()

    def test_it_marks_the_client_ids_keyward_knows(self, make_client):
        client, _secret = make_client("Orders")
        Client.objects.filter(pk=client.pk).update(client_id="orders-service")
        ingest(str(SAMPLE_FILES["keycloak"]), "--format", "keycloak", "--shift-to-now")
        known = TokenEvent.objects.filter(client_known=True)
        assert set(known.values_list("client_id", flat=True)) == {"orders-service"}
        assert known.count() == 9
        # Other services' clients are kept, known or not.
        assert TokenEvent.objects.filter(client_id="legacy-crm", client_known=False).count() == 4
        # Another service's event is not this client's use.
        client.refresh_from_db()
        assert client.last_used_at is None

    def test_a_given_source_names_the_events(self):
        out, _err = ingest(
            str(SAMPLE_FILES["okta"]), "--format", "okta", "--source", "okta-eu", "--shift-to-now"
        )
        assert set(TokenEvent.objects.values_list("source", flat=True)) == {"okta-eu"}

    def test_keyward_lines_keep_their_own_source(self):
        ingest(str(SAMPLE_FILES["keyward"]), "--format", "keyward", "--shift-to-now")
        sources = collections.Counter(TokenEvent.objects.values_list("source", flat=True))
        assert sources == {"keyward": 20, "keyward-staging": 1}
        staging = TokenEvent.objects.get(source="keyward-staging")
        assert staging.secret_id is None


class TestInput:
    def test_it_reads_standard_input_plain_or_gzip(self, monkeypatch):
        lines = [keycloak_line(at=time.time() - i) for i in range(3)]
        for compress in (False, True):
            data = b"".join(orjson.dumps(line) + b"\n" for line in lines)
            data = gzip.compress(data) if compress else data
            stdin = io.TextIOWrapper(io.BufferedReader(io.BytesIO(data)))
            monkeypatch.setattr(sys, "stdin", stdin)
            out, _err = ingest("-", "--format", "keycloak")
            assert summary(out)["read"] == 3
        assert TokenEvent.objects.count() == 3

    def test_it_answers_a_missing_file_in_one_line(self, tmp_path):
        with pytest.raises(CommandError, match="Cannot read .*missing.jsonl"):
            ingest(str(tmp_path / "missing.jsonl"), "--format", "okta")

    @pytest.mark.parametrize("source", ["Keycloak Prod", "", "a" * 65, "ünïcode"])
    def test_it_refuses_a_source_that_is_not_a_name(self, source):
        with pytest.raises(CommandError, match="--source"):
            ingest(str(SAMPLE_FILES["okta"]), "--format", "okta", "--source", source)

    def test_shift_to_now_needs_a_file(self):
        with pytest.raises(CommandError, match="needs a file"):
            ingest("-", "--format", "okta", "--shift-to-now")


class TestRefusedLines:
    def test_a_bad_line_never_stops_the_lines_after_it(self, tmp_path):
        now = time.time()
        lines = [keycloak_line(at=now - i) for i in range(12_000)]
        lines[6_000] = orjson.dumps(lines[6_000])[:40]  # cut short
        lines[7_000] = b"\xff\xfe not utf-8"
        lines[11_999] = {**lines[11_999], "time": "later"}
        path = write_lines(tmp_path / "events.jsonl", lines)
        out, err = ingest(str(path), "--format", "keycloak", "--batch-size", "5000")
        assert summary(out) == {
            "read": 12_000,
            "ingested": 11_997,
            "duplicates": 0,
            "rejected": 3,
            "skipped": 0,
        }
        refusals = [line.split(": ", 1) for line in err.splitlines()]
        assert [(where, why.split(" (")[0]) for where, why in refusals] == [
            ("line 6001", "not valid JSON, or cut short"),
            ("line 7001", "not valid JSON, or cut short"),
            ("line 12000", "time must be a number"),
        ]
        assert TokenEvent.objects.count() == 11_997

    def test_it_lists_the_first_refusals_and_counts_the_rest(self, tmp_path):
        lines = [b"{oops"] * 30 + [keycloak_line(at=time.time())]
        path = write_lines(tmp_path / "events.jsonl", lines)
        out, err = ingest(str(path), "--format", "keycloak", "--max-errors", "5")
        assert summary(out)["rejected"] == 30
        assert err.splitlines()[:5] == [
            f"line {n}: not valid JSON, or cut short (unexpected character, expected a string key: "
            "line 1 column 2 (char 1))"
            for n in range(1, 6)
        ]
        assert err.splitlines()[5:] == ["… and 25 more refused lines"]
        assert TokenEvent.objects.count() == 1

    def test_it_refuses_events_older_than_the_retention(self, tmp_path, settings):
        now = time.time()
        lines = [
            keycloak_line(at=now - 40 * 86400),
            keycloak_line(at=now - 29 * 86400),
            keycloak_line(at=now + 2 * 3600),
            keycloak_line(at=now - 8 * 86400),
        ]
        path = write_lines(tmp_path / "events.jsonl", lines)
        out, err = ingest(str(path), "--format", "keycloak")
        assert summary(out)["ingested"] == 2
        assert err.splitlines() == [
            "line 1: older than the event retention (30 days)",
            "line 3: more than an hour in the future",
        ]
        settings.KEYWARD_EVENT_RETENTION_DAYS = 7
        out, err = ingest(str(path), "--format", "keycloak")
        assert "line 4: older than the event retention (7 days)" in err.splitlines()

    def test_it_skips_an_overlong_line_without_reading_it_whole(self, tmp_path):
        huge = {**keycloak_line(at=time.time()), "padding": "x" * (2 * 1024 * 1024)}
        path = write_lines(tmp_path / "events.jsonl", [huge, keycloak_line(at=time.time())])
        out, err = ingest(str(path), "--format", "keycloak")
        assert summary(out)["ingested"] == 1
        assert err.splitlines() == ["line 1: line longer than 1048576 bytes"]

    def test_it_keeps_what_came_before_a_truncated_gzip_stream(self, tmp_path):
        lines = [keycloak_line(at=time.time() - i) for i in range(200)]
        path = write_lines(tmp_path / "events.jsonl.gz", lines, compress=True)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        out, err = ingest(str(path), "--format", "keycloak")
        counts = summary(out)
        assert 0 < counts["ingested"] < 200
        assert counts["rejected"] == 1
        assert "the gzip stream ends or breaks after line" in err
        assert TokenEvent.objects.count() == counts["ingested"]

    def test_a_row_the_database_refuses_costs_only_its_own_line(self, tmp_path):
        # A constraint the record's validation knows nothing about: the batch fails, and is
        # rewritten one record at a time.
        table = TokenEvent._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"ALTER TABLE {table} ADD CONSTRAINT test_no_poison CHECK (client_id <> 'poison')"
            )
        try:
            lines = [keycloak_line(at=time.time() - i) for i in range(10)]
            lines[4] = keycloak_line(at=time.time(), client="poison")
            path = write_lines(tmp_path / "events.jsonl", lines)
            out, err = ingest(str(path), "--format", "keycloak")
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT test_no_poison")
        assert summary(out)["ingested"] == 9
        assert err.startswith("line 5: refused by the database (")
        assert not TokenEvent.objects.filter(client_id="poison").exists()

    def test_duplicates_within_one_file_are_stored_once(self, tmp_path):
        line = keycloak_line(at=time.time())
        path = write_lines(tmp_path / "events.jsonl", [line, line, line])
        out, _err = ingest(str(path), "--format", "keycloak")
        assert summary(out) == {
            "read": 3,
            "ingested": 1,
            "duplicates": 2,
            "rejected": 0,
            "skipped": 0,
        }


def test_an_okta_row_holds_the_token_id_and_user_agent():
    ingest(str(SAMPLE_FILES["okta"]), "--format", "okta", "--shift-to-now")
    row = TokenEvent.objects.filter(reason="ok").order_by("occurred_at").first()
    assert (row.status_code, row.endpoint, row.client_id) == (200, "token", "0oa8f5j3ecb5w3dF35d7")
    assert row.jti.startswith("AT.")
    assert row.user_agent == "python-requests/2.32.3"
    assert row.scopes_granted == "inventory.read inventory.write"


def test_ingested_events_show_in_the_explorer_with_their_source(viewer_client):
    ingest(str(SAMPLE_FILES["auth0"]), "--format", "auth0", "--shift-to-now")
    page = viewer_client.get("/analytics/events/?source=auth0&range=24h").content.decode()
    assert "AaiyAPdpYdesoKnqjj8HJqRn4T5titww" in page
    assert "service_not_enabled_within" in page
    assert viewer_client.get("/analytics/events/?source=okta&range=24h").status_code == 200
