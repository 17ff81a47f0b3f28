"""The production web process: gunicorn.conf.py serving keyward.asgi (tokens/asgi.py)."""

from __future__ import annotations

import threading

import pytest
import requests

from audit.models import TokenEvent
from tokens.asgi import TokenServiceASGI
from tokens.database_thread import database_io, on_event_loop
from tokens.protocol import MAX_BODY_BYTES

from .conftest import asgi_http_scope, asgi_run, basic, gunicorn_serving

GRANT = {"grant_type": "client_credentials"}


def _token(session, url: str, client_id: str, secret: str, **extra) -> requests.Response:
    headers = {"Authorization": basic(client_id, secret), **extra.pop("headers", {})}
    return session.post(url + "/token-srv/token", data=GRANT, headers=headers, timeout=5, **extra)


class TestTokenServiceUnderGunicorn:
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

    def test_it_refuses_an_oversized_chunked_body_with_a_json_error(
        self, production_server, registered
    ):
        client, secret = registered

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

    def test_it_keeps_djangos_security_headers_and_names_no_server(
        self, production_server, registered
    ):
        client, secret = registered
        answer = _token(requests, production_server, client.client_id, secret)
        assert answer.status_code == 200
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Cache-Control"] == "no-store"
        assert int(answer.headers["Content-Length"]) == len(answer.content)
        assert "Server" not in answer.headers

    def test_it_records_the_event_with_the_socket_address(
        self, production_server, registered, events
    ):
        client, secret = registered
        headers = {"X-Forwarded-For": "203.0.113.9", "User-Agent": "asgi-test"}
        _token(requests, production_server, client.client_id, secret, headers=headers)
        [event] = [e for e in events() if e.user_agent == "asgi-test"]
        assert event.source_ip == "127.0.0.1"
        assert event.outcome == TokenEvent.Outcome.SUCCESS


class TestRedisDownUnderGunicorn:
    """The fallbacks that write to the database run on the database thread (Django's
    async-safety guard is on in the server: a miss would be a 500)."""

    @pytest.fixture
    def server(self, transactional_db):
        with gunicorn_serving(REDIS_URL="redis://127.0.0.1:1/0") as url:
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


class TestDashboardUnderGunicorn:
    def test_the_login_page_comes_through_the_wsgi_bridge(self, production_server):
        answer = requests.get(production_server + "/login/", timeout=5)
        assert answer.status_code == 200
        assert "csrftoken" in answer.cookies
        assert "<form" in answer.text

    def test_static_files_come_through_the_bridge(self, production_server):
        answer = requests.get(production_server + "/static/keyward.css", timeout=5)
        assert answer.status_code == 200
        assert answer.headers["Content-Type"].startswith("text/css")
        assert int(answer.headers["Content-Length"]) == len(answer.content) > 0

    def test_the_well_known_documents_are_served(self, production_server):
        jwks = requests.get(production_server + "/.well-known/jwks.json", timeout=5)
        assert jwks.status_code == 200
        assert jwks.json()["keys"]


# --- The ASGI application on its own (no server, no database) -----------------------------


class Recorder:
    """An ASGI app standing in for the dashboard: records what it was given."""

    def __init__(self):
        self.paths, self.headers, self.bodies = [], [], []

    async def __call__(self, scope, receive, send):
        self.paths.append(scope["path"])
        self.headers.append(scope["headers"])
        self.bodies.append((await receive())["body"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def front():
    return TokenServiceASGI(fallback=Recorder())


class TestTokenServiceASGI:
    def test_it_completes_startup_and_shutdown(self, front):
        incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        sent = asgi_run(front, {"type": "lifespan"}, incoming)
        assert [m["type"] for m in sent] == [
            "lifespan.startup.complete",
            "lifespan.shutdown.complete",
        ]

    def test_it_refuses_websockets(self, front):
        sent = asgi_run(front, {"type": "websocket", "path": "/"}, [{"type": "websocket.connect"}])
        assert sent == [{"type": "websocket.close", "code": 1008}]

    def test_it_passes_every_other_path_to_the_dashboard(self, front):
        for path in ("/", "/login/", "/token-srv/tokens", "/.well-known/jwks.json"):
            asgi_run(front, asgi_http_scope(path), [{"type": "http.request", "body": b""}])
        assert front.fallback.paths == [
            "/",
            "/login/",
            "/token-srv/tokens",
            "/.well-known/jwks.json",
        ]

    def test_it_routes_by_the_path_below_the_mount_point(self, front):
        asgi_run(
            front,
            asgi_http_scope("/kw/token-srv/token", root_path="/kw"),
            [{"type": "http.disconnect"}],
        )
        assert front.fallback.paths == []

    def test_it_answers_nothing_when_the_client_leaves_before_its_body(self, front):
        sent = asgi_run(front, asgi_http_scope("/token-srv/token"), [{"type": "http.disconnect"}])
        assert sent == []

    def test_a_fault_of_its_own_is_answered_as_json_server_error(self, front):
        def broken(request):
            raise RuntimeError("boom")

        front.handler = broken
        sent = asgi_run(
            front, asgi_http_scope("/token-srv/token"), [{"type": "http.request", "body": b"x"}]
        )
        assert sent[0]["status"] == 500
        assert (b"content-type", b"application/json") in sent[0]["headers"]
        assert b'"error":"server_error"' in sent[1]["body"]


class TestDashboardGuards:
    def test_it_replays_the_body_to_the_dashboard(self, front):
        incoming = [
            {"type": "http.request", "body": b"a=1&", "more_body": True},
            {"type": "http.request", "body": b"b=2", "more_body": False},
        ]
        asgi_run(front, asgi_http_scope("/login/"), incoming)
        assert front.fallback.bodies == [b"a=1&b=2"]

    def test_it_refuses_a_body_over_djangos_limit_with_413(self, front, settings):
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
        incoming = [{"type": "http.request", "body": b"x" * 600, "more_body": True}] * 3
        sent = asgi_run(front, asgi_http_scope("/login/"), incoming)
        assert sent[0]["status"] == 413
        assert front.fallback.paths == []

    def test_it_drops_header_names_with_underscores(self, front):
        scope = asgi_http_scope("/")
        scope["headers"] = [(b"x_forwarded_proto", b"https"), (b"x-forwarded-proto", b"http")]
        asgi_run(front, scope, [{"type": "http.request", "body": b""}])
        assert front.fallback.headers == [[(b"x-forwarded-proto", b"http")]]


class TestTokenPathGuards:
    def test_a_host_outside_allowed_hosts_is_a_400_not_a_500(self, front, settings):
        settings.SECURE_SSL_REDIRECT = True  # the redirect is what reads the Host header
        settings.ALLOWED_HOSTS = ["keyward.example.com"]
        scope = asgi_http_scope("/token-srv/token")
        scope["headers"] = [(b"host", b"evil.example.net")]
        sent = asgi_run(front, scope, [{"type": "http.request", "body": b""}])
        assert sent[0]["status"] == 400


class TestDatabaseIO:
    def test_it_runs_on_the_database_thread_inside_the_event_loop_path(self):
        where = database_io(lambda: threading.current_thread().name)
        with on_event_loop():
            inside = where()
        assert inside.startswith("token-db")
        assert where() == threading.current_thread().name


class TestBodyLimit:
    def test_it_stops_reading_one_byte_past_the_limit(self, front):
        seen = []

        def record(request):
            seen.append(len(request.body))
            raise RuntimeError("stop here")

        front.handler = record
        incoming = [
            {"type": "http.request", "body": b"a" * MAX_BODY_BYTES, "more_body": True},
            {"type": "http.request", "body": b"b" * 10, "more_body": True},
            {"type": "http.request", "body": b"c" * 10, "more_body": False},
        ]
        asgi_run(front, asgi_http_scope("/token-srv/token"), incoming)
        assert seen == [MAX_BODY_BYTES + 1]
