"""The token service's ASGI front, used in production by `dashboard/asgi.py`.

Under gunicorn's sync workers every request paid for a new TCP connection and a pure-Python
HTTP parser: ~0.3 ms of CPU per request before Django saw it (a hello-world WSGI app did
~5,500 requests/s on 2 cores). uvicorn's worker keeps connections alive and parses in C
(httptools, uvloop): the same hello world costs ~0.07 ms. Machine clients that reuse their
connection, as every HTTP client library does, get the difference on every token.

The three token-service endpoints keep everything the WSGI path gives them (Django's request
object, `SecurityMiddleware`, `request_started` / `request_finished`) but skip the
ASGI→WSGI bridge and run inline on the event loop, one request at a time per process, as
in a sync worker. They need no database when warm; what does is marked `@database_io` and
runs on a dedicated thread (tokens/database_thread.py). Every other path (dashboard,
well-known documents, static files) goes to Django's WSGI application through asgiref's
bridge, which runs it on a single thread per process: Django's own ASGI handler would start
a thread per request, and with it a database connection per request.
"""

from __future__ import annotations

import io
import logging

import orjson
from django.core import signals
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse, HttpResponseNotFound
from django.middleware.security import SecurityMiddleware

from .database_thread import database_thread_close, on_event_loop
from .middleware import ROUTES, TokenServiceShortcut
from .protocol import MAX_BODY_BYTES

log = logging.getLogger(__name__)

Headers = list[tuple[bytes, bytes]]
SERVER_ERROR = (
    500,
    [(b"content-type", b"application/json"), (b"cache-control", b"no-store")],
    orjson.dumps({"error": "server_error", "error_description": "Try again later."}),
)


def _not_a_token_path(request) -> HttpResponse:  # the shortcut only passes other paths here
    return HttpResponseNotFound()


class TokenServiceASGI:
    """ASGI application: token-service paths inline, the rest to `fallback`."""

    def __init__(self, fallback):
        self.fallback = fallback
        self.handler = SecurityMiddleware(TokenServiceShortcut(_not_a_token_path))

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "http" and _path_info(scope) in ROUTES:
            await self._token_service(scope, receive, send)
        elif kind == "http":
            await self.fallback(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:  # websocket: nothing here speaks it; closing before accept answers 403
            await receive()
            await send({"type": "websocket.close", "code": 1008})

    async def _token_service(self, scope, receive, send) -> None:
        body = await _body_read(receive)
        if body is None:
            return  # the client went away before sending its body
        try:
            with on_event_loop():
                status, headers, content = self.respond(scope, body)
        except Exception:
            log.exception("token service front failed on %s", scope.get("path"))
            status, headers, content = SERVER_ERROR
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    def respond(self, scope, body: bytes) -> tuple[int, Headers, bytes]:
        """Django's request cycle for one token-service request, minus URL resolution."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        response = None
        try:
            response = self.handler(ASGIRequest(scope, io.BytesIO(body)))
            return response.status_code, _headers(response), response.content
        finally:
            if response is not None:
                response.close()  # sends request_finished: connection cleanup, as in Django
            else:
                signals.request_finished.send(sender=self.__class__)

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                database_thread_close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _path_info(scope) -> str:
    """The path below the mount point, as Django's ASGIRequest computes it."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :]
    return path


async def _body_read(receive) -> bytes | None:
    """The request body, stopping one byte past the limit (the view refuses that size).

    Content-Length is checked by the view before it reads; this bounds a chunked body.
    """
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return b"".join(chunks)[: MAX_BODY_BYTES + 1]
        if not message.get("more_body", False):
            return b"".join(chunks)


def _headers(response: HttpResponse) -> Headers:
    headers = [(name.encode("ascii"), value.encode("latin-1")) for name, value in response.items()]
    for cookie in response.cookies.values():
        headers.append((b"set-cookie", cookie.output(header="").encode("ascii").strip()))
    return headers
