"""gunicorn settings for the web process (Dockerfile, docker-compose.yml, bench/).

Serve `keyward.asgi:application`: uvicorn workers (keep-alive, C HTTP parser) with the
token service on its own path (tokens/asgi.py). One worker more than there are cores keeps
every core busy while a worker waits on Redis or the database. bench/README.md has the
figures, and those of sync workers for comparison.
"""

from __future__ import annotations

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() + 1))
worker_class = "keyward.gunicorn_worker.KeywardWorker"
backlog = 2048
timeout = 30
# Idle keep-alive connections are held this long. Behind a load balancer set it above the
# balancer's own idle timeout, so the server never closes a connection the balancer reuses.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Every token-service request is already recorded as a token event; an access-log line per
# request would cost the hot path a write. Set GUNICORN_ACCESS_LOG=- to log to stdout.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
