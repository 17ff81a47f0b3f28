"""POST /analytics/api/ingest: token auth, limits, content types, per-line errors,
idempotent re-sends — and never a 500, never the token in a log line.

Transactional: the endpoint writes through the event store, which commits each batch."""

from __future__ import annotations

import gzip
import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client as HttpClient
from django.utils import timezone

from analytics.ingestion_tokens import ingestion_token_create, ingestion_token_revoke
from analytics.models import IngestionToken, TokenEvent
from audit.models import AdminAction
from audit.services import Actor
from tests.analytics.conftest import fresh_events, ndjson

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/analytics/api/ingest"
NDJSON = "application/x-ndjson"


@pytest.fixture
def token(admin_user) -> tuple[IngestionToken, str]:
    return ingestion_token_create(
        actor=Actor(label=admin_user.username, user=admin_user),
        name="Keycloak production",
        source="keycloak-prod",
    )


@pytest.fixture
def plain(token) -> str:
    return token[1]


def post(
    body: bytes,
    plain: str | None,
    *,
    query: str = "format=keycloak",
    content_type: str = NDJSON,
    browser: HttpClient | None = None,
    **headers,
):
    if plain is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {plain}"
    browser = browser or HttpClient()
    return browser.post(f"{URL}?{query}", data=body, content_type=content_type, **headers)


class TestAccepted:
    @pytest.mark.parametrize("log_format", ["keyward", "keycloak", "auth0", "okta"])
    def test_it_stores_every_format_and_answers_the_counts(self, plain, log_format):
        body = ndjson(fresh_events(log_format, 5))
        response = post(body, plain, query=f"format={log_format}")
        assert response.status_code == 202, response.content
        assert response.json() == {
            "format": log_format,
            "source": "keycloak-prod",
            "read": 5,
            "ingested": 5,
            "duplicates": 0,
            "rejected": 0,
            "skipped": 0,
        }
        assert set(TokenEvent.objects.values_list("source", flat=True)) == {"keycloak-prod"}

    def test_sending_the_same_lines_again_adds_nothing(self, plain):
        body = ndjson(fresh_events("okta", 20))
        assert post(body, plain, query="format=okta").json()["ingested"] == 20
        rows = list(TokenEvent.objects.order_by("id"))
        again = post(body, plain, query="format=okta")
        assert again.status_code == 202
        assert (again.json()["ingested"], again.json()["duplicates"]) == (0, 20)
        assert list(TokenEvent.objects.order_by("id")) == rows

    def test_it_takes_a_gzip_body(self, plain):
        body = gzip.compress(ndjson(fresh_events("auth0", 30)))
        response = post(body, plain, query="format=auth0", HTTP_CONTENT_ENCODING="gzip")
        assert response.status_code == 202
        assert response.json()["ingested"] == 30

    @pytest.mark.parametrize(
        "content_type",
        ["application/json", "application/jsonl", "application/x-ndjson; charset=utf-8"],
    )
    def test_it_takes_the_json_lines_media_types(self, plain, content_type):
        response = post(ndjson(fresh_events("keycloak", 1)), plain, content_type=content_type)
        assert response.status_code == 202

    def test_a_request_may_name_another_source(self, plain):
        body = ndjson(fresh_events("keycloak", 2))
        response = post(body, plain, query="format=keycloak&source=keycloak-staging")
        assert response.json()["source"] == "keycloak-staging"
        assert set(TokenEvent.objects.values_list("source", flat=True)) == {"keycloak-staging"}

    def test_other_flows_are_skipped_not_refused(self, plain):
        login = {"id": "x1", "time": 1, "type": "LOGIN", "clientId": "web", "details": {}}
        response = post(ndjson([login, *fresh_events("keycloak", 1)]), plain)
        assert response.status_code == 202
        assert (response.json()["skipped"], response.json()["ingested"]) == (1, 1)

    def test_it_needs_no_csrf_token_and_no_session(self, plain):
        browser = HttpClient(enforce_csrf_checks=True)
        response = post(ndjson(fresh_events("keycloak", 1)), plain, browser=browser)
        assert response.status_code == 202
        assert "sessionid" not in response.cookies
        assert "csrftoken" not in response.cookies

    def test_it_records_when_a_token_was_last_used(self, token, plain):
        assert token[0].last_used_at is None
        post(ndjson(fresh_events("keycloak", 1)), plain)
        token[0].refresh_from_db()
        assert timezone.now() - token[0].last_used_at < timedelta(seconds=30)


class TestRefusedLines:
    def test_it_lists_refused_lines_by_number_and_stores_the_rest(self, plain):
        good = fresh_events("keycloak", 3)
        lines = [good[0], b'{"id": "cut', good[1], {**good[2], "id": "x", "time": "soon"}, good[2]]
        response = post(ndjson(lines), plain)
        assert response.status_code == 400
        body = response.json()
        assert body["error"] == "invalid_lines"
        assert (body["read"], body["ingested"], body["rejected"]) == (5, 3, 2)
        assert [error["line"] for error in body["errors"]] == [2, 4]
        assert body["errors"][0]["reason"].startswith("not valid JSON, or cut short")
        assert body["errors"][1]["reason"] == "time must be a number (milliseconds since 1970)"
        assert body["errors_omitted"] == 0
        assert TokenEvent.objects.count() == 3

    def test_it_caps_the_list_and_counts_the_rest(self, plain):
        response = post(ndjson([b"{oops"] * 150), plain)
        body = response.json()
        assert response.status_code == 400
        assert len(body["errors"]) == 100
        assert body["errors_omitted"] == 50

    def test_an_event_older_than_the_retention_is_a_refused_line(self, plain):
        old = fresh_events("okta", 1, at=timezone.now().timestamp() - 31 * 86400)
        response = post(ndjson(old), plain, query="format=okta")
        assert response.status_code == 400
        assert response.json()["errors"] == [
            {"line": 1, "reason": "older than the event retention (30 days)"}
        ]

    def test_an_empty_body_is_a_bad_request(self, plain):
        # The test client sends no Content-Type with an empty body; curl would.
        response = post(b"", plain, CONTENT_TYPE=NDJSON)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"


class TestAuthentication:
    def assert_refused(self, response, description: str | None) -> None:
        assert response.status_code == 401
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"] == "invalid_token"
        challenge = response["WWW-Authenticate"]
        assert challenge.startswith('Bearer realm="keyward-ingest"')
        if description:
            assert f'error_description="{description}"' in challenge
        assert TokenEvent.objects.count() == 0

    def test_it_refuses_a_request_without_a_token(self):
        response = post(ndjson(fresh_events("keycloak", 1)), None)
        self.assert_refused(response, None)
        assert response["WWW-Authenticate"] == 'Bearer realm="keyward-ingest"'

    @pytest.mark.parametrize(
        "authorization",
        ["Basic a3dpbmc6eA==", "Bearer", "Bearer ", "kwing_abc", "Token kwing_abc"],
    )
    def test_it_refuses_other_schemes_and_empty_tokens(self, authorization):
        body = ndjson(fresh_events("keycloak", 1))
        response = HttpClient().post(
            f"{URL}?format=keycloak", body, content_type=NDJSON, HTTP_AUTHORIZATION=authorization
        )
        self.assert_refused(response, None)

    @pytest.mark.parametrize(
        "wrong",
        [
            "kwing_0123456789ab_" + "A" * 43,  # well-formed, unknown
            "kwsec_" + "A" * 43,  # a client secret is not an ingestion token
            "not a token at all",
        ],
    )
    def test_it_refuses_a_wrong_token(self, token, wrong):
        self.assert_refused(post(ndjson(fresh_events("keycloak", 1)), wrong), None)

    def test_it_refuses_a_token_with_the_right_lookup_and_a_wrong_secret(self, token):
        forged = token[1][:-4] + ("AAAA" if not token[1].endswith("AAAA") else "BBBB")
        response = post(ndjson(fresh_events("keycloak", 1)), forged)
        self.assert_refused(response, "unknown token")

    def test_it_refuses_a_revoked_token(self, admin_user, token, plain):
        ingestion_token_revoke(actor=Actor(label="ada", user=admin_user), token=token[0])
        self.assert_refused(post(ndjson(fresh_events("keycloak", 1)), plain), "token revoked")

    def test_it_refuses_an_expired_token(self, token, plain):
        IngestionToken.objects.filter(pk=token[0].pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        self.assert_refused(post(ndjson(fresh_events("keycloak", 1)), plain), "token expired")

    def test_a_console_session_is_no_credential(self, admin_client):
        response = post(ndjson(fresh_events("keycloak", 1)), None, browser=admin_client)
        self.assert_refused(response, None)

    def test_keywards_own_source_is_forbidden(self, plain):
        response = post(
            ndjson(fresh_events("keyward", 1)), plain, query="format=keyward&source=keyward"
        )
        assert response.status_code == 403
        assert response.json()["error"] == "forbidden"
        assert TokenEvent.objects.count() == 0


class TestRequestErrors:
    @pytest.mark.parametrize(
        ("query", "words"),
        [
            ("", "?format= must be one of auth0, keycloak, keyward, okta."),
            ("format=splunk", "?format= must be one of"),
            ("format=okta&source=Not%20A%20Name", "?source=: Use lowercase letters"),
        ],
    )
    def test_it_refuses_bad_parameters(self, plain, query, words):
        response = post(ndjson(fresh_events("okta", 1)), plain, query=query)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"
        assert words in response.json()["error_description"]

    @pytest.mark.parametrize(
        ("content_type", "headers"),
        [
            ("text/plain", {}),
            ("multipart/form-data; boundary=x", {}),
            ("application/x-www-form-urlencoded", {}),
            (NDJSON, {"HTTP_CONTENT_ENCODING": "br"}),
        ],
    )
    def test_it_refuses_other_media_types_and_encodings(self, plain, content_type, headers):
        body = ndjson(fresh_events("keycloak", 1))
        response = post(body, plain, content_type=content_type, **headers)
        assert response.status_code == 415
        assert response.json()["error"] == "unsupported_media_type"
        assert TokenEvent.objects.count() == 0

    def test_it_says_so_when_gzip_comes_without_its_header(self, plain):
        response = post(gzip.compress(ndjson(fresh_events("keycloak", 1))), plain)
        assert response.status_code == 415
        assert "Content-Encoding: gzip" in response.json()["error_description"]

    def test_it_refuses_a_body_that_is_not_gzip_as_announced(self, plain):
        response = post(b"not gzip at all", plain, HTTP_CONTENT_ENCODING="gzip")
        assert response.status_code == 400
        assert "not valid gzip" in response.json()["error_description"]

    def test_it_refuses_a_truncated_gzip_body(self, plain):
        body = gzip.compress(ndjson(fresh_events("keycloak", 50)))
        response = post(body[: len(body) // 2], plain, HTTP_CONTENT_ENCODING="gzip")
        assert response.status_code == 400
        assert TokenEvent.objects.count() == 0

    def test_it_answers_other_methods_with_405(self, plain):
        response = HttpClient().get(f"{URL}?format=okta", HTTP_AUTHORIZATION=f"Bearer {plain}")
        assert response.status_code == 405
        assert response["Allow"] == "POST"
        assert response.json()["error"] == "method_not_allowed"


class TestSizeLimits:
    def test_it_refuses_a_body_over_the_limit_before_reading_it(self, plain, settings):
        settings.KEYWARD_INGEST_MAX_BYTES = 1000
        body = ndjson(fresh_events("keycloak", 20))
        assert len(body) > 1000
        response = post(body, plain)
        assert response.status_code == 413
        assert response.json()["error"] == "payload_too_large"
        assert "at most 1000 bytes" in response.json()["error_description"]
        assert TokenEvent.objects.count() == 0

    def test_it_refuses_a_body_over_the_limit_once_decompressed(self, plain, settings):
        settings.KEYWARD_INGEST_MAX_DECOMPRESSED_BYTES = 5000
        body = gzip.compress(ndjson(fresh_events("keycloak", 100)))
        assert len(body) < 5000
        response = post(body, plain, HTTP_CONTENT_ENCODING="gzip")
        assert response.status_code == 413
        assert TokenEvent.objects.count() == 0

    def test_a_body_at_the_limit_is_accepted(self, plain, settings):
        body = ndjson(fresh_events("keycloak", 20))
        settings.KEYWARD_INGEST_MAX_BYTES = len(body)
        settings.KEYWARD_INGEST_MAX_DECOMPRESSED_BYTES = len(body)
        assert post(body, plain).status_code == 202


class TestDatabaseDown:
    def test_it_answers_503_to_retry_not_500(self, plain):
        # A real outage: the connection is pointed at a port nothing listens on.
        body = ndjson(fresh_events("keycloak", 3))
        connection.close()
        real_port = connection.settings_dict["PORT"]
        connection.settings_dict["PORT"] = "1"
        try:
            response = post(body, plain)
        finally:
            connection.close()
            connection.settings_dict["PORT"] = real_port
        assert response.status_code == 503
        assert response["Retry-After"] == "5"
        assert response.json()["error"] == "temporarily_unavailable"
        # Retrying once the database is back stores the events, once.
        assert post(body, plain).json()["ingested"] == 3


class TestTheTokenStaysSecret:
    def test_no_log_line_and_no_audit_row_holds_the_token(self, caplog, admin_user, token, plain):
        caplog.set_level(logging.DEBUG)
        body = ndjson(fresh_events("keycloak", 2))
        post(body, plain)
        post(ndjson([b"{bad"]), plain)
        post(body, plain + "x")
        post(body, plain, query="format=nope")
        ingestion_token_revoke(actor=Actor(label="ada", user=admin_user), token=token[0])
        post(body, plain)
        # kwing_ + 12 hex + _ + the secret; the secret itself may hold "_", so cut by position.
        secret_part = plain[len("kwing_") + 13 :]
        assert caplog.records  # the refusals were logged (Django's request log)
        assert secret_part not in caplog.text
        for action in AdminAction.objects.all():
            assert secret_part not in repr((action.before, action.after, action.target_label))
