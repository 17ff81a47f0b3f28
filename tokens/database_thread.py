"""Database work of token-service code that runs on the event loop's thread (tokens/asgi.py).

Under the ASGI front the three endpoints run inline on the event loop, one request at a
time per process, as a sync worker would run them. Handing every request to a worker
thread instead cost ~20 % more CPU per token (measured: the GIL and the wake-ups moving
each request between two threads). A warm request touches no database; the few functions
that do (a client or key reload, the Redis-down fallbacks, a revocation) are marked
`@database_io` and run on one dedicated thread, so Django's async-safety guard stays on
and its connection keeps the life it has in a sync worker. The loop waits for them, which
is what a sync worker does too.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import close_old_connections, connections

_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="token-db")
# The event loop waits at most this long; then the request fails as server_error rather
# than the worker hanging until gunicorn's timeout kills it.
WAIT_SECONDS = 10.0
_state = threading.local()


@contextlib.contextmanager
def on_event_loop():
    """Marks the token-service code the ASGI front runs inline on its event loop."""
    _state.on_loop = True
    try:
        yield
    finally:
        _state.on_loop = False


def database_io(function):
    """Run `function` on the database thread when called within `on_event_loop()`.

    Everywhere else (WSGI, Celery, management commands, tests) it is a plain call.
    """

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if not getattr(_state, "on_loop", False):
            return function(*args, **kwargs)
        return _thread.submit(_database_call, function, args, kwargs).result(WAIT_SECONDS)

    return wrapper


def _database_call(function, args, kwargs):
    # What request_started / request_finished do for a request's connection: drop one
    # that broke or outlived CONN_MAX_AGE.
    close_old_connections()
    try:
        return function(*args, **kwargs)
    finally:
        close_old_connections()


def database_thread_close() -> None:
    """Close the database thread's connections (worker shutdown)."""
    _thread.submit(_connections_close).result()


def _connections_close() -> None:
    for connection in connections.all(initialized_only=True):
        connection.close()
