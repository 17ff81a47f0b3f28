"""The production web process: bin/serve (granian serving keyward.wsgi) on the test database."""

from __future__ import annotations

import time

import pytest
import requests
from django.db import connection

from analytics.models import TokenEvent
from tokens.protocol import MAX_BODY_BYTES

from .conftest import basic, serving

GRANT = {"grant_type": "client_credentials"}


def _token(session, url: str, client_id: str, secret: str, **extra) -> requests.Response:
    headers = {"Authorization": basic(client_id, secret), **extra.pop("headers", {})}
    return session.post(url + "/token-srv/token", data=GRANT, headers=headers, timeout=5, **extra)


class TestTokenServiceUnderTheServer:
    def test_it_issues_introspects_and_revokes_on_one_kept_alive_connection(
        self, production_server, registered
    ):
        client, secret = registered
        auth = {"Authorization": basic(client.client_id, secret)}
        with requests.Session() as session:
            token = _token(session, production_server, client.client_id, secret).json()
            bearer = {"Authorization": "Bearer " + token["access_token"]}
            url = production_server + "/token-srv/"
            form = {"token": token["access_token"]}
            assert session.post(url + "introspect", data=form, headers=bearer).json()["active"]
            assert session.post(url + "revoke", data=form, headers=auth).status_code == 200
            answer = session.post(url + "introspect", data=form, headers=bearer)
        # The revoked token no longer authenticates the bearer caller itself.
        assert answer.status_code == 401

    def test_it_believes_the_socket_not_x_forwarded_for(self, production_server, make_client):
        client, secret = make_client(allowed_networks=["10.0.0.0/8"])
        spoofed = {"X-Forwarded-For": "10.1.2.3"}
        answer = _token(requests, production_server, client.client_id, secret, headers=spoofed)
        assert answer.status_code == 401
        assert answer.json()["error"] == "invalid_client"

    def test_it_answers_a_chunked_body_with_a_json_error(self, production_server, registered):
        client, secret = registered

        # WSGI reads no body without Content-Length (form posts always carry one).
        def chunks():  # a generator body goes out chunked, without Content-Length
            yield b"grant_type=client_credentials&pad="
            for _ in range(4):
                yield b"x" * MAX_BODY_BYTES

        answer = requests.post(
            production_server + "/token-srv/token",
            data=chunks(),
            headers={
                "Authorization": basic(client.client_id, secret),
                "Content-Type": "application/x-www-form-urlencoded",
            },
            timeout=5,
        )
        assert answer.status_code == 400
        assert answer.json()["error"] == "invalid_request"

    def test_it_answers_get_with_405_json(self, production_server):
        answer = requests.get(production_server + "/token-srv/token", timeout=5)
        assert answer.status_code == 405
        assert answer.headers["Allow"] == "POST"
        assert answer.json()["error"] == "invalid_request"

    def test_it_keeps_djangos_security_headers_and_sets_content_length(
        self, production_server, registered
    ):
        client, secret = registered
        answer = _token(requests, production_server, client.client_id, secret)
        assert answer.status_code == 200
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Cache-Control"] == "no-store"
        assert int(answer.headers["Content-Length"]) == len(answer.content)
        assert "chunked" not in answer.headers.get("Transfer-Encoding", "")

    @pytest.mark.parametrize("path", ["token", "introspect", "revoke"])
    def test_a_host_outside_allowed_hosts_is_a_400_not_an_answer(self, production_server, path):
        answer = requests.post(
            production_server + "/token-srv/" + path,
            data=GRANT,
            headers={"Host": "evil.example"},
            timeout=5,
        )
        assert answer.status_code == 400
        assert answer.json()["error"] == "invalid_request"

    def test_an_error_answer_carries_its_content_length_too(self, production_server):
        answer = requests.post(production_server + "/token-srv/token", data=GRANT, timeout=5)
        assert answer.status_code == 401
        assert int(answer.headers["Content-Length"]) == len(answer.content)

    def test_it_records_the_event_with_the_socket_address(
        self, production_server, registered, events
    ):
        client, secret = registered
        headers = {"X-Forwarded-For": "203.0.113.9", "User-Agent": "server-test"}
        _token(requests, production_server, client.client_id, secret, headers=headers)
        [event] = [e for e in events() if e.user_agent == "server-test"]
        assert event.source_ip == "127.0.0.1"
        assert event.outcome == TokenEvent.Outcome.SUCCESS


class TestTheTokenServiceProcesses:
    """bin/serve as docker-compose.yml's tokens service runs it: one thread per process."""

    @pytest.fixture
    def tokens_server(self, transactional_db):
        with serving(GRANIAN_BLOCKING_THREADS="1") as url:
            yield url

    def test_it_issues_introspects_and_revokes(self, tokens_server, registered, events):
        client, secret = registered
        auth = {"Authorization": basic(client.client_id, secret)}
        with requests.Session() as session:
            tokens = [_token(session, tokens_server, client.client_id, secret) for _ in range(5)]
            assert [answer.status_code for answer in tokens] == [200] * 5
            url = tokens_server + "/token-srv/"
            form = {"token": tokens[0].json()["access_token"]}
            assert session.post(url + "introspect", data=form, headers=auth).json()["active"]
            assert session.post(url + "revoke", data=form, headers=auth).status_code == 200
            assert session.post(url + "introspect", data=form, headers=auth).json() == {
                "active": False
            }
        # Every request's event reaches the buffer, the queued ones within a send interval.
        deadline = time.monotonic() + 5
        while len(events()) < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sorted(event.endpoint for event in events()) == (
            ["introspect"] * 2 + ["revoke"] + ["token"] * 5
        )


class TestQueuedEventsUnderTheServer:
    def test_a_stopping_server_sends_what_it_queued(self, transactional_db, registered, events):
        client, secret = registered
        # An interval no test waits for: only the worker's exit can send the queue.
        with serving(KEYWARD_TOKEN_EVENT_SEND_INTERVAL="30") as url:
            with requests.Session() as session:
                answers = [_token(session, url, client.client_id, secret) for _ in range(8)]
            assert [answer.status_code for answer in answers] == [200] * 8
            assert len(events()) < 8
        assert len(events()) == 8


class TestDatabaseConnectionsUnderTheServer:
    def test_a_connection_the_database_dropped_is_replaced_not_reused(
        self, production_server, make_client
    ):
        """The front's housekeeping after each token request (tokens/front.py): the server's
        next database use checks its connection and reconnects. Without it, every request
        that needs the database would fail on the dead connection."""
        first, first_secret = make_client("first")
        with requests.Session() as session:
            for _ in range(8):  # every worker thread opens its connection
                assert _token(session, production_server, first.client_id, first_secret).ok
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            assert cursor.fetchone()[0] >= 1
        # A client no process has cached: each request reads it from the database.
        second, second_secret = make_client("second")
        with requests.Session() as session:
            answers = [
                _token(session, production_server, second.client_id, second_secret)
                for _ in range(8)
            ]
        assert [answer.status_code for answer in answers] == [200] * 8


class TestRedisDownUnderTheServer:
    """The fallbacks that write to the database, in the server's own threads."""

    @pytest.fixture
    def server(self, transactional_db):
        with serving(REDIS_URL="redis://127.0.0.1:1/0") as url:
            yield url

    def test_tokens_are_issued_introspected_and_revoked_with_events_in_the_database(
        self, server, registered
    ):
        client, secret = registered
        auth = {"Authorization": basic(client.client_id, secret)}
        token = _token(requests, server, client.client_id, secret).json()["access_token"]
        url = server + "/token-srv/"
        form = {"token": token}
        assert requests.post(url + "introspect", data=form, headers=auth).json()["active"]
        assert requests.post(url + "revoke", data=form, headers=auth).status_code == 200
        # Denylisted in the database only; introspection reads it there.
        answer = requests.post(url + "introspect", data=form, headers=auth)
        assert answer.json() == {"active": False}
        endpoints = set(
            TokenEvent.objects.filter(client_id=client.client_id).values_list("endpoint", flat=True)
        )
        assert endpoints == {"token", "introspect", "revoke"}


class TestDashboardUnderTheServer:
    def test_the_login_page_is_served(self, production_server):
        answer = requests.get(production_server + "/login/", timeout=5)
        assert answer.status_code == 200
        assert "csrftoken" in answer.cookies
        assert "<form" in answer.text

    def test_static_files_are_served(self, production_server):
        answer = requests.get(production_server + "/static/keyward.css", timeout=5)
        assert answer.status_code == 200
        assert answer.headers["Content-Type"].startswith("text/css")
        assert int(answer.headers["Content-Length"]) == len(answer.content) > 0

    def test_the_well_known_documents_are_served(self, production_server):
        jwks = requests.get(production_server + "/.well-known/jwks.json", timeout=5)
        assert jwks.status_code == 200
        assert jwks.json()["keys"]


class TestDashboardGuards:
    def test_a_body_over_djangos_limit_is_refused_not_buffered_into_a_500(
        self, production_server, settings
    ):
        too_big = b"x=" + b"y" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)
        answer = requests.post(
            production_server + "/login/",
            data=too_big,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=10,
        )
        assert 400 <= answer.status_code < 500
