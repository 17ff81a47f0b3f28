"""Token-service fixtures: per-process caches reset per test, a client with scopes, helpers."""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jsonschema
import orjson
import pytest
import redis
import requests
from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpResponse
from django.test import Client as HttpClient
from django.test.client import ClientHandler

from audit.events import TokenEventRecord, token_event_json_schema
from tests.processes import child_database_url
from tokens import sink
from tokens.buffer import EVENT_BUFFER_KEY
from tokens.client_cache import client_cache_clear
from tokens.front import token_service_front
from tokens.keys import key_ring_reset

TOKEN_URL = "/token-srv/token"
INTROSPECT_URL = "/token-srv/introspect"
REVOKE_URL = "/token-srv/revoke"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(autouse=True)
def _fresh_token_service():
    # Each test's transaction is rolled back, so cached keys and clients must go too.
    key_ring_reset()
    client_cache_clear()
    sink.sink_reset()
    yield
    key_ring_reset()
    client_cache_clear()
    sink.sink_reset()


@pytest.fixture
def redis_client():
    return redis.Redis.from_url(settings.REDIS_URL)


EVENT_SCHEMA = jsonschema.Draft202012Validator(
    token_event_json_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)


def event_from_buffer(raw: bytes) -> TokenEventRecord:
    """A buffer item as the token service wrote it: valid against the documented schema, and
    exactly the record's fields (no cleaning, unlike TokenEventRecord.from_buffer)."""
    data = orjson.loads(raw)
    EVENT_SCHEMA.validate(data)
    return TokenEventRecord(**data)


@pytest.fixture
def events(redis_client):
    """Reads the token events pushed to the Redis buffer so far, checking each one."""

    def read() -> list[TokenEventRecord]:
        return [event_from_buffer(raw) for raw in redis_client.lrange(EVENT_BUFFER_KEY, 0, -1)]

    redis_client.delete(EVENT_BUFFER_KEY)
    return read


@pytest.fixture
def scopes(make_scope):
    return [make_scope("orders:read"), make_scope("orders:write"), make_scope("billing:read")]


@pytest.fixture
def registered(make_client, scopes):
    """(client, secret) holding orders:read and orders:write."""
    return make_client("svc", scopes=scopes[:2])


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


class ServedClientHandler(ClientHandler):
    """Django's test-client handler behind the token front, composed as keyward.wsgi composes
    them for bin/serve: token-service requests take the front's path, every other request
    Django's own (with the test client's conveniences). A new front per request, so it
    reads settings a test overrides, as Django's test client reloads its middleware."""

    def __call__(self, environ):
        answered = {}

        def django_application(environ, start_response):
            answered["response"] = super(ServedClientHandler, self).__call__(environ)
            return []

        started = {}

        def start_response(status, headers, exc_info=None):
            started.update(status=status, headers=headers)

        # The front's connection housekeeping would end the test's transaction: off, as
        # Django's test client disconnects close_old_connections.
        front = token_service_front(django_application, housekeeping=lambda: None)
        body = b"".join(front(environ, start_response))
        if "response" in answered:
            return answered["response"]
        response = _served_response(started["status"], started["headers"], body)
        response.wsgi_request = WSGIRequest(environ)  # the test client reads its urlconf
        return response


def _served_response(status: str, headers: list[tuple[str, str]], body: bytes) -> HttpResponse:
    code, _, reason = status.partition(" ")
    response = HttpResponse(body, status=int(code), reason=reason)
    del response["Content-Type"]
    for name, value in headers:
        response.headers[name] = value
    return response


@pytest.fixture
def http() -> HttpClient:
    client = HttpClient(REMOTE_ADDR="127.0.0.1")
    client.handler = ServedClientHandler(enforce_csrf_checks=False)
    return client


@pytest.fixture
def post_form(http):
    def post(url: str, data: dict | str | bytes = "", **extra):
        body = data if isinstance(data, str | bytes) else _encode(data)
        return http.post(url, body, content_type=extra.pop("content_type", FORM), **extra)

    return post


def _encode(data: dict) -> str:
    from urllib.parse import urlencode

    return urlencode(data)


@pytest.fixture
def get_token(post_form, registered):
    """Fetch a token for `registered` (or the given credentials); returns the JSON body."""

    def fetch(client_id: str | None = None, secret: str | None = None, **form):
        client, plain = registered
        response = post_form(
            TOKEN_URL,
            {"grant_type": "client_credentials", **form},
            HTTP_AUTHORIZATION=basic(client_id or client.client_id, secret or plain),
        )
        assert response.status_code == 200, response.content
        return response.json()

    return fetch


ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(**env_overrides):
    """The web process as deployed: bin/serve (granian, 2 workers) on the test database and
    the test Redis unless overridden. Yields its base URL."""
    port = _free_port()
    env = os.environ | {
        "DATABASE_URL": child_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "LOG_LEVEL": "WARNING",
        "PYTHON": sys.executable,
        "GRANIAN_HOST": "127.0.0.1",
        "GRANIAN_PORT": str(port),
        "GRANIAN_LOG_LEVEL": "info",  # says when each worker has started
    }
    env |= env_overrides
    # The browser tests set this for their own process; the server runs as deployed.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    # A file, not a pipe: a pipe nobody reads fills up and blocks the server's logging.
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed when the server stops
    process = subprocess.Popen(
        [str(ROOT / "bin" / "serve")],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    # Every worker up, not just the first: a worker stopped while it still loads Django
    # ignores the signal until granian's kill timeout.
    while _log_text(log).count("Started worker-") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    while time.monotonic() < deadline:
        try:
            requests.get(url + "/.well-known/oauth-authorization-server", timeout=5)
            break
        except requests.RequestException:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("the server did not start: " + _log_text(log)[-2000:])
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _log_text(log) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")


@pytest.fixture
def production_server(transactional_db):
    with serving() as url:
        yield url
