"""The resource-server kit's usage report, against a real Keyward server (live_server):
tokens from its token endpoint, keys from its JWKS, reports to its /analytics/api/usage."""

from __future__ import annotations

import logging
import socket
import time
from datetime import UTC, datetime

import pytest
import requests
from django.http import JsonResponse
from django.test import RequestFactory

from analytics.ingestion_tokens import ingestion_token_create
from analytics.models import ScopeExerciseHour
from audit.services import Actor
from tokens import resource
from tokens.resource import UsageReporter, require_scopes, usage_reporter

from .conftest import TOKEN_URL, basic

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ingestion_token(admin_user) -> str:
    _token, plain = ingestion_token_create(
        actor=Actor(label=admin_user.username, user=admin_user),
        name="Orders API usage",
        source="orders-api",
    )
    return plain


@pytest.fixture
def usage_url(live_server) -> str:
    return live_server.url + "/analytics/api/usage"


@pytest.fixture
def report_settings(settings, usage_url, ingestion_token):
    settings.KEYWARD_USAGE_REPORT = True
    settings.KEYWARD_USAGE_REPORT_URL = usage_url
    settings.KEYWARD_USAGE_REPORT_TOKEN = ingestion_token
    settings.KEYWARD_USAGE_REPORT_MAX_ENTRIES = 1
    return settings


def exercised() -> dict:
    rows = ScopeExerciseHour.objects.values_list("client_id", "scope", "via", "reporter", "count")
    return {row[:4]: row[4] for row in rows}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class TestUsageReporter:
    def test_it_sends_the_counts_in_one_batch(self, usage_url, ingestion_token):
        reporter = UsageReporter(url=usage_url, token=ingestion_token, interval=3600)
        for _ in range(3):
            reporter.record("svc-billing", ["orders:read"])
        reporter.record("svc-billing", ["orders:read", "orders:write"])
        assert reporter.flush() is True
        assert exercised() == {
            ("svc-billing", "orders:read", "report", "orders-api"): 4,
            ("svc-billing", "orders:write", "report", "orders-api"): 1,
        }
        hour = int(time.time() // 3600 * 3600)
        assert set(ScopeExerciseHour.objects.values_list("bucket", flat=True)) == {
            datetime.fromtimestamp(hour, tz=UTC)
        }

    def test_a_flush_sends_each_count_once(self, usage_url, ingestion_token):
        reporter = UsageReporter(url=usage_url, token=ingestion_token, interval=3600)
        reporter.record("svc-billing", ["orders:read"])
        reporter.flush()
        assert reporter.flush() is True  # nothing left: no request
        reporter.record("svc-billing", ["orders:read"])
        reporter.flush()
        assert exercised() == {("svc-billing", "orders:read", "report", "orders-api"): 2}

    def test_it_splits_into_batches_of_max_entries(self, usage_url, ingestion_token):
        reporter = UsageReporter(url=usage_url, token=ingestion_token, max_entries=2)
        reporter._started = True  # as if its thread ran: this test flushes by hand
        for n in range(5):
            reporter.record(f"client-{n}", ["orders:read"])
        assert reporter.flush() is True
        assert len(exercised()) == 5

    def test_it_names_its_resource(self, usage_url, ingestion_token):
        reporter = UsageReporter(url=usage_url, token=ingestion_token, resource="orders-eu")
        reporter.record("svc-billing", ["orders:read"])
        reporter.flush()
        assert {key[3] for key in exercised()} == {"orders-eu"}

    def test_an_unreachable_issuer_drops_the_batch_with_a_warning(self, caplog, ingestion_token):
        url = f"http://127.0.0.1:{free_port()}/analytics/api/usage"
        reporter = UsageReporter(url=url, token=ingestion_token, interval=3600)
        reporter.record("svc-billing", ["orders:read"])
        with caplog.at_level(logging.WARNING, logger="tokens.resource"):
            assert reporter.flush() is False
        assert "usage report of 1 entries dropped" in caplog.text
        assert ingestion_token not in caplog.text
        assert reporter._counts == {}

    def test_a_refused_token_drops_the_batch_with_a_warning(self, caplog, usage_url):
        reporter = UsageReporter(url=usage_url, token="kwing_000000000000_" + "x" * 43)
        reporter.record("svc-billing", ["orders:read"])
        with caplog.at_level(logging.WARNING, logger="tokens.resource"):
            assert reporter.flush() is False
        assert "401" in caplog.text
        assert exercised() == {}

    def test_recording_never_waits_for_a_slow_issuer(self, ingestion_token):
        # A server that accepts connections and never answers.
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen()
            url = f"http://127.0.0.1:{silent.getsockname()[1]}/analytics/api/usage"
            reporter = UsageReporter(url=url, token=ingestion_token, max_entries=1)
            started = time.perf_counter()
            for n in range(200):
                reporter.record(f"client-{n}", ["orders:read"])
            assert time.perf_counter() - started < 0.5

    def test_it_keeps_at_most_max_pending_keys(self, ingestion_token):
        reporter = UsageReporter(url="http://127.0.0.1:9/", token=ingestion_token, interval=3600)
        reporter._started = True  # as if its thread were stuck on a slow issuer
        reporter.max_pending = 3
        for n in range(5):
            reporter.record(f"client-{n}", ["orders:read"])
        assert len(reporter._counts) == 3
        assert reporter.dropped == 2


class TestThroughRequireScopes:
    def test_it_is_off_by_default(self, settings):
        assert not getattr(settings, "KEYWARD_USAGE_REPORT", False)
        assert usage_reporter() is None

    def test_a_protected_request_is_reported_in_the_background(
        self, live_server, report_settings, registered
    ):
        client, secret = registered
        answer = requests.post(
            live_server.url + TOKEN_URL,
            data={"grant_type": "client_credentials", "scope": "orders:read"},
            headers={"Authorization": basic(client.client_id, secret)},
            timeout=5,
        )
        token = answer.json()["access_token"]
        view = require_scopes("orders:read", jwks_url=live_server.url + "/.well-known/jwks.json")(
            lambda request: JsonResponse({"ok": True})
        )
        request = RequestFactory().get("/orders", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert view(request).status_code == 200
        # MAX_ENTRIES = 1: the first key wakes the thread, which sends at once.
        deadline = time.monotonic() + 10
        while not exercised() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert exercised() == {(client.client_id, "orders:read", "report", "orders-api"): 1}

    def test_a_refused_request_is_not_reported(self, live_server, report_settings):
        view = require_scopes("orders:read", jwks_url=live_server.url + "/.well-known/jwks.json")(
            lambda request: JsonResponse({"ok": True})
        )
        request = RequestFactory().get("/orders")
        assert view(request).status_code == 401
        reporter = usage_reporter()
        assert reporter._counts == {}


@pytest.fixture(autouse=True)
def _forget_reporter():
    yield
    resource._reporter = None
    resource._jwks_caches.clear()
