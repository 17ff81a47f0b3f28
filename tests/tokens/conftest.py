"""Token-service fixtures: per-process caches reset per test, a client with scopes, helpers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema
import orjson
import pytest
import redis
import requests
from django.conf import settings
from django.test import Client as HttpClient

from audit.events import TokenEventRecord, token_event_json_schema
from tokens import sink
from tokens.client_cache import client_cache_clear
from tokens.drain import EVENT_BUFFER_KEY
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


@pytest.fixture
def http() -> HttpClient:
    return HttpClient(REMOTE_ADDR="127.0.0.1")


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
def gunicorn_serving(**env_overrides):
    """The web process as deployed: gunicorn.conf.py serving keyward.asgi with 2 workers,
    on the test database and the test Redis unless overridden. Yields its base URL."""
    port = _free_port()
    db = settings.DATABASES["default"]
    env = os.environ | {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "LOG_LEVEL": "WARNING",
        "GUNICORN_LOG_LEVEL": "warning",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
    }
    env |= env_overrides
    # The browser tests set this for their own process; a server must run with Django's
    # async-safety guard on, so that database work on the event loop fails loudly here.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "--config",
            str(ROOT / "gunicorn.conf.py"),
            "keyward.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(url + "/.well-known/oauth-authorization-server", timeout=5)
            break
        except requests.RequestException:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("gunicorn did not start: " + process.stderr.read().decode()[-2000:])
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def production_server(transactional_db):
    with gunicorn_serving() as url:
        yield url


# --- Driving an ASGI application in-process --------------------------------------------------


def asgi_run(app, scope: dict, incoming: list[dict]) -> list[dict]:
    """Drive `app` with the `incoming` messages; return what it sent."""
    sent, queue = [], list(incoming)

    async def receive():
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    # On a thread of its own: the browser tests leave an event loop running on this one.
    runner = threading.Thread(target=asyncio.run, args=(app(scope, receive, send),))
    runner.start()
    runner.join()
    return sent


def asgi_http_scope(path: str, root_path: str = "", headers=None) -> dict:
    """An HTTP POST scope as uvicorn would pass it (form content type unless `headers`)."""
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "root_path": root_path,
        "query_string": b"",
        "headers": [(b"content-type", FORM.encode())] if headers is None else headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "scheme": "http",
        "http_version": "1.1",
    }
