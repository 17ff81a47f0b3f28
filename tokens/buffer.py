"""The token-event buffer in Redis: its keys and the client that reads it.

The token service RPUSHes events onto EVENT_BUFFER_KEY (tokens/sink.py); the drain
(analytics/drain.py) moves them into the event store; tokens/pipeline.py reports on both.
The keys live here, with the producer, because the drain's app sits above tokens.
"""

from __future__ import annotations

from functools import cache

import redis
from django.conf import settings

# Redis list the token service RPUSHes encoded events onto (production mode).
EVENT_BUFFER_KEY = "keyward:token-events"
# The batch being written; non-empty only while a drain runs or after one was killed.
EVENT_PROCESSING_KEY = EVENT_BUFFER_KEY + ":processing"
EVENT_DRAIN_LOCK_KEY = EVENT_BUFFER_KEY + ":drain-lock"
# Unix time the last drain run finished; tokens/pipeline.py reads it (health, worker fallback).
DRAIN_HEARTBEAT_KEY = EVENT_BUFFER_KEY + ":drained-at"


@cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=3)


def event_buffer_redis() -> redis.Redis:
    """The Redis client the drain uses (one connection pool per process)."""
    return _redis(settings.REDIS_URL)
