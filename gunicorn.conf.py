"""gunicorn settings for the web process (Dockerfile, docker-compose.yml, bench/).

Sync workers: the token endpoint is CPU-bound apart from one Redis round trip per request,
so one worker more than there are cores keeps every core busy while a worker waits on Redis
(bench/README.md has the figures for 2, 3 and 4 workers on 2 cores).
"""

from __future__ import annotations

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() + 1))
worker_class = "sync"
backlog = 2048
timeout = 30
# Every token-service request is already recorded as a token event; an access-log line per
# request would cost the hot path a write. Set GUNICORN_ACCESS_LOG=- to log to stdout.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
