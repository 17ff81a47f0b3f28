"""The token service's ASGI front, used in production by `dashboard/asgi.py`.

Under gunicorn's sync workers every request paid for a new TCP connection and a pure-Python
HTTP parser: ~0.3 ms of CPU per request before Django saw it (a hello-world WSGI app did
~5,500 requests/s on 2 cores). uvicorn's worker keeps connections alive and parses in C
(httptools, uvloop): the same hello world costs ~0.07 ms. Machine clients that reuse their
connection, as every HTTP client library does, get the difference on every token.

The three token-service endpoints keep Django's request object, `SecurityMiddleware` and
the shortcut's routing and error handling, but skip the ASGI→WSGI bridge and run inline on
the event loop, one request at a time per process, as in a sync worker. They need no
database when warm; what does is marked `@database_io` and runs on a dedicated thread
(tokens/database_thread.py). Every other path (dashboard,
well-known documents, static files) goes to Django's WSGI application through asgiref's
bridge, which runs it on a single thread per process: Django's own ASGI handler would start
a thread per request, and with it a database connection per request.
"""

from __future__ import annotations

import io
import logging

import orjson
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpResponse, HttpResponseNotFound
from django.middleware.security import SecurityMiddleware

from .database_thread import database_thread_close, on_event_loop
from .middleware import ROUTES, TokenServiceShortcut
from .protocol import MAX_BODY_BYTES

log = logging.getLogger(__name__)

Headers = list[tuple[bytes, bytes]]
_SERVER_ERROR_BODY = orjson.dumps(
    {"error": "server_error", "error_description": "Try again later."}
)
SERVER_ERROR = (
    500,
    [
        (b"content-type", b"application/json"),
        (b"cache-control", b"no-store"),
        (b"content-length", b"%d" % len(_SERVER_ERROR_BODY)),
    ],
    _SERVER_ERROR_BODY,
)


def _not_a_token_path(request) -> HttpResponse:  # the shortcut only passes other paths here
    return HttpResponseNotFound()


class TokenServiceASGI:
    """ASGI application: token-service paths inline, the rest to `fallback`."""

    def __init__(self, fallback):
        self.fallback = fallback
        # As Django's handler builds its chain: an exception in a middleware (DisallowedHost
        # from the HTTPS redirect, say) becomes Django's 400/500 response, not a traceback.
        shortcut = convert_exception_to_response(TokenServiceShortcut(_not_a_token_path))
        self.handler = convert_exception_to_response(SecurityMiddleware(shortcut))

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "http" and _path_info(scope) in ROUTES:
            await self._token_service(scope, receive, send)
        elif kind == "http":
            await self._dashboard(scope, receive, send)
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

    async def _dashboard(self, scope, receive, send) -> None:
        """Hand the request to the WSGI application with the guards a WSGI server gives.

        1. The body is read here, up to DATA_UPLOAD_MAX_MEMORY_SIZE (the dashboard takes no
           uploads): asgiref's bridge would spool any size to disk before Django could
           refuse it. Larger: 413.
        2. Header names with underscores are dropped, as gunicorn's sync worker does: in
           the WSGI environ `X_Forwarded_Proto` and `X-Forwarded-Proto` would be one.
        """
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = await _body_read(receive, limit)
        if body is None:
            return
        if limit is not None and len(body) > limit:
            await _answer(send, 413, b"text/plain", b"Request body too large.")
            return
        headers = [(name, value) for name, value in scope["headers"] if b"_" not in name]
        replay = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive_replayed():
            return replay.pop() if replay else await receive()

        await self.fallback(dict(scope, headers=headers), receive_replayed, send)

    def respond(self, scope, body: bytes) -> tuple[int, Headers, bytes]:
        """Django's request cycle for one token-service request, minus URL resolution.

        Without request_started / request_finished: their receivers reset the query log and
        close the database and cache connections of the current thread, and this thread
        holds none (Django's guard refuses database work on the event loop; the token path
        uses no Django cache in production). The database thread does that cleanup around
        each of its calls. Sending the two signals cost ~80 µs per token (measured).
        """
        response = self.handler(ASGIRequest(scope, io.BytesIO(body)))
        return response.status_code, _headers(response), response.content

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    database_thread_close()
                except Exception as exc:
                    await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                return


def _path_info(scope) -> str:
    """The path below the mount point, as Django's ASGIRequest computes it."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :]
    return path


async def _body_read(receive, limit: int | None = MAX_BODY_BYTES) -> bytes | None:
    """The request body, stopping one byte past `limit` (the caller refuses that size);
    None when the client left first. This also bounds a chunked body."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if limit is not None and size > limit:
            return b"".join(chunks)[: limit + 1]
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _answer(send, status: int, content_type: bytes, body: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _headers(response: HttpResponse) -> Headers:
    # ASGI wants header names in lower case.
    headers = [
        (name.lower().encode("ascii"), value.encode("latin-1")) for name, value in response.items()
    ]
    if not response.has_header("Content-Length"):  # else the server would send it chunked
        headers.append((b"content-length", b"%d" % len(response.content)))
    for cookie in response.cookies.values():
        headers.append((b"set-cookie", cookie.output(header="").encode("ascii").strip()))
    return headers
