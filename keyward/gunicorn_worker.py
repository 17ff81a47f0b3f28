"""The gunicorn worker class for `keyward.asgi:application` (gunicorn.conf.py)."""

from __future__ import annotations

from uvicorn_worker import UvicornWorker


class KeywardWorker(UvicornWorker):
    """uvicorn under gunicorn, with the settings Keyward relies on.

    - `proxy_headers` off: uvicorn would otherwise take the client address from
      X-Forwarded-For on connections from 127.0.0.1. The token service decides which proxies
      to believe itself (KEYWARD_TRUSTED_PROXIES), and IP allowlists depend on it.
    - uvloop and httptools named, not "auto": a missing one fails at start, not silently slow.
    - lifespan on: the app closes its database thread's connections when the worker stops.
    """

    CONFIG_KWARGS = {
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "proxy_headers": False,
        "server_header": False,
    }
