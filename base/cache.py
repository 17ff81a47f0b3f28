"""Django's Redis cache, failing soft: with Redis unreachable a read is a miss and a write is
skipped (logged), so whatever caches a database row reads the row instead of failing.

Only for values the database holds too (a secret policy, say). Counters and buffers that
live only in Redis (tokens/sink.py) handle an outage themselves.
"""

from __future__ import annotations

import functools
import logging

import redis
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache

log = logging.getLogger(__name__)

# A refused connection fails at once; these bound a Redis that hangs (default OPTIONS).
SOCKET_TIMEOUTS = {"socket_connect_timeout": 1.0, "socket_timeout": 1.0}


def _fail_soft(fallback):
    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except redis.RedisError as failure:
                log.warning("cache %s skipped, Redis failed: %s", method.__name__, failure)
                return fallback(*args, **kwargs)

        return wrapper

    return decorate


class FailSoftRedisCache(RedisCache):
    def __init__(self, server, params):
        params = {**params, "OPTIONS": {**SOCKET_TIMEOUTS, **params.get("OPTIONS", {})}}
        super().__init__(server, params)

    @_fail_soft(lambda key, default=None, version=None: default)
    def get(self, key, default=None, version=None):
        return super().get(key, default, version)

    @_fail_soft(lambda keys, version=None: {})
    def get_many(self, keys, version=None):
        return super().get_many(keys, version)

    @_fail_soft(lambda key, version=None: False)
    def has_key(self, key, version=None):
        return super().has_key(key, version)

    @_fail_soft(lambda *args, **kwargs: False)
    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return super().add(key, value, timeout, version)

    @_fail_soft(lambda *args, **kwargs: None)
    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return super().set(key, value, timeout, version)

    @_fail_soft(lambda data, *args, **kwargs: list(data))
    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return super().set_many(data, timeout, version)

    @_fail_soft(lambda *args, **kwargs: False)
    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return super().touch(key, timeout, version)

    @_fail_soft(lambda *args, **kwargs: False)
    def delete(self, key, version=None):
        return super().delete(key, version)

    @_fail_soft(lambda *args, **kwargs: None)
    def delete_many(self, keys, version=None):
        return super().delete_many(keys, version)
