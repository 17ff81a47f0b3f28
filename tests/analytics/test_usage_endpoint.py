"""POST /analytics/api/usage: resource servers' usage reports into the exercised rollup —
ingestion-token auth, validation, size limit, idempotent batches, never a 500."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import OperationalError, connection
from django.test import Client as HttpClient

from analytics.ingestion_tokens import ingestion_token_create, ingestion_token_revoke
from analytics.models import ScopeExerciseHour, UsageReport
from audit.services import Actor

pytestmark = pytest.mark.django_db

URL = "/analytics/api/usage"
HOUR = int(time.time() // 3600 * 3600)


@pytest.fixture
def token(admin_user):
    return ingestion_token_create(
        actor=Actor(label=admin_user.username, user=admin_user),
        name="Orders API",
        source="orders-api",
    )


@pytest.fixture
def plain(token) -> str:
    return token[1]


def report(**fields) -> dict:
    entry = {"client_id": "svc-billing", "scope": "orders:read", "hour": HOUR, "count": 3}
    return {"batch_id": str(uuid.uuid4()), "entries": [entry]} | fields


def post(body, plain: str | None, *, content_type: str = "application/json", **headers):
    if plain is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {plain}"
    data = body if isinstance(body, bytes) else json.dumps(body)
    return HttpClient().post(URL, data=data, content_type=content_type, **headers)


def exercised() -> dict:
    rows = ScopeExerciseHour.objects.values_list(
        "bucket", "client_id", "scope", "via", "reporter", "count"
    )
    return {row[:5]: row[5] for row in rows}


def at(hour: int) -> datetime:
    return datetime.fromtimestamp(hour, tz=UTC)


class TestAccepted:
    def test_it_adds_the_counts_to_the_exercised_rollup(self, plain):
        body = report(
            entries=[
                {"client_id": "svc-billing", "scope": "orders:read", "hour": HOUR, "count": 3},
                {"client_id": "svc-billing", "scope": "orders:read", "hour": HOUR, "count": 2},
                {"client_id": "svc-billing", "scope": "orders:write", "hour": HOUR - 3600,
                 "count": 1},
            ]
        )  # fmt: skip
        response = post(body, plain)
        assert response.status_code == 202, response.content
        assert response.json() == {
            "batch_id": body["batch_id"],
            "resource": "orders-api",
            "entries": 2,
            "duplicate": False,
        }
        assert exercised() == {
            (at(HOUR), "svc-billing", "orders:read", "report", "orders-api"): 5,
            (at(HOUR - 3600), "svc-billing", "orders:write", "report", "orders-api"): 1,
        }

    def test_a_batch_sent_again_counts_once(self, plain):
        body = report()
        assert post(body, plain).status_code == 202
        again = post(body, plain)
        assert again.status_code == 202
        assert again.json()["duplicate"] is True
        assert list(exercised().values()) == [3]
        assert UsageReport.objects.get().total == 3

    def test_new_batches_add_up(self, plain):
        post(report(), plain)
        post(report(), plain)
        assert list(exercised().values()) == [6]

    def test_the_report_may_name_its_resource(self, plain):
        post(report(resource="orders-api-eu"), plain)
        assert {key[4] for key in exercised()} == {"orders-api-eu"}

    def test_a_client_id_holding_a_secret_is_redacted(self, plain):
        entry = {"client_id": "kwsec_oops", "scope": "orders:read", "hour": HOUR, "count": 1}
        post(report(entries=[entry]), plain)
        assert {key[1] for key in exercised()} == {"kwsec_…redacted"}


class TestRefused:
    def test_it_wants_a_token(self):
        response = post(report(), None)
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_token"
        assert response["WWW-Authenticate"].startswith("Bearer realm=")

    def test_it_refuses_a_revoked_token(self, token, plain, admin_user):
        ingestion_token_revoke(actor=Actor(label="admin", user=admin_user), token=token[0])
        response = post(report(), plain)
        assert response.status_code == 401
        assert response.json()["error_description"] == "token revoked"
        assert exercised() == {}

    def test_it_refuses_the_reserved_resource_name(self, plain):
        response = post(report(resource="keyward"), plain)
        assert response.status_code == 403
        assert response.json()["error"] == "forbidden"

    def test_it_refuses_a_body_over_the_limit(self, plain, settings):
        settings.KEYWARD_USAGE_REPORT_MAX_BYTES = 200
        entries = [{"client_id": f"c{i}", "scope": "s", "hour": HOUR, "count": 1} for i in range(9)]
        response = post(report(entries=entries), plain)
        assert response.status_code == 413
        assert response.json()["error"] == "payload_too_large"
        assert exercised() == {}

    def test_it_wants_json(self, plain):
        response = post(b"client_id=x", plain, content_type="application/x-www-form-urlencoded")
        assert response.status_code == 415

    def test_it_refuses_get(self, plain):
        response = HttpClient().get(URL, HTTP_AUTHORIZATION=f"Bearer {plain}")
        assert response.status_code == 405
        assert response["Allow"] == "POST"

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (b"{not json", "not valid JSON"),
            (b"[1, 2]", "JSON object"),
            ({"entries": []}, "batch_id"),
            (report(entries=[]), "non-empty list"),
            (report(resource="Orders API"), "resource"),
            (report(entries=[{"client_id": "", "scope": "s", "hour": HOUR, "count": 1}]),
             "entries[0]: client_id"),
            (report(entries=[{"client_id": "c", "scope": "a b", "hour": HOUR, "count": 1}]),
             "one scope per entry"),
            (report(entries=[{"client_id": "c", "scope": "s", "hour": HOUR + 1, "count": 1}]),
             "start of an hour"),
            (report(entries=[{"client_id": "c", "scope": "s", "hour": HOUR + 7200, "count": 1}]),
             "in the future"),
            (report(entries=[{"client_id": "c", "scope": "s", "hour": 3600, "count": 1}]),
             "kept window"),
            (report(entries=[{"client_id": "c", "scope": "s", "hour": HOUR, "count": 0}]),
             "count"),
            (report(entries=[{"client_id": "c", "scope": "s", "hour": HOUR, "count": True}]),
             "count"),
            (report(entries=["x"]), "must be an object"),
        ],
    )  # fmt: skip
    def test_it_explains_what_is_wrong_and_stores_nothing(self, plain, body, message):
        response = post(body, plain)
        assert response.status_code == 400, response.content
        assert response.json()["error"] == "invalid_request"
        assert message in response.json()["error_description"]
        assert exercised() == {}
        assert not UsageReport.objects.exists()

    def test_a_bad_entry_refuses_the_whole_batch(self, plain):
        good = {"client_id": "c", "scope": "s", "hour": HOUR, "count": 1}
        response = post(report(entries=[good, {**good, "count": -1}]), plain)
        assert response.status_code == 400
        assert "entries[1]" in response.json()["error_description"]
        assert exercised() == {}

    def test_a_database_outage_is_a_503_to_retry(self, plain):
        def down(*args, **kwargs):
            raise OperationalError("server closed the connection unexpectedly")

        with connection.execute_wrapper(down):
            response = post(report(), plain)
        assert response.status_code == 503
        assert response["Retry-After"] == "5"


class TestRetention:
    def test_old_batch_ids_are_pruned_with_the_rollups(self, plain):
        from analytics.retention import _rollups_prune

        post(report(), plain)
        UsageReport.objects.update(received_at=datetime.now(UTC) - timedelta(days=8))
        _rollups_prune()
        assert not UsageReport.objects.exists()
        assert exercised()  # the counts stay for the rollup retention
