"""Rate limits, token events and the denylist check in one cheap step per request.

Redis mode: one Lua script call (one round trip) checks the caller's failure counter,
increments the request counters, appends the event (as answered, or as rate-limited when over
a limit) to the event buffer and, for introspection, tells whether a jti is denylisted.
Everything goes through redis-py's public API: a registered script, a pipeline where several
commands go together, hiredis to parse replies when installed (it is a dependency).

Redis unavailable: limits fail open, the event is written to the database, the denylist is
read from the RevokedToken table, and a warning is logged at most every WARN_EVERY seconds.
For DOWN_BACKOFF seconds after a failure, requests skip Redis rather than retry it.

Embedded mode (no REDIS_URL): counters in Django's local cache (per process), events and
denylist in the database.

Counters use fixed windows of KEYWARD_RATE_LIMIT_WINDOW seconds: the key carries the window
number, so Retry-After is simply the time left in the window.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core.cache import cache
from redis.backoff import NoBackoff
from redis.retry import Retry

from audit.events import TokenEventRecord

from .drain import EVENT_BUFFER_KEY, token_events_write
from .models import RevokedToken

log = logging.getLogger(__name__)

WARN_EVERY = 30.0
DOWN_BACKOFF = 1.0
DENYLIST_PREFIX = "keyward:revoked:"
COUNTER_PREFIX = "keyward:rl:"

# KEYS: 1 event buffer, 2 failure counter, 3 denylist key to test ("" for none), 4.. counters
# ARGV: 1 the event as answered, 2 the same event as rate-limited (both to_buffer()), 3
#       counter TTL, 4 failure limit, 5 "1" if this request failed to authenticate, 6.. the
#       limit of each counter in KEYS[4..]
# Returns {limited (0/1), denylisted (0/1)}.
#
# Whether the request is limited is known only inside the script (atomically with the
# counters), and the event must be pushed in the same round trip. So the caller sends both
# encodings and the script pushes one: the rate-limit rewrite stays defined once, in
# TokenEventRecord.as_rate_limited(), for ~2.5 µs and ~300 bytes more per request. Pushing
# from the caller instead would take a second round trip for every limited request, which
# is exactly the traffic (brute force, floods) that must stay cheap.
LUA_SCRIPT = """
local limited = 0
local failures = tonumber(redis.call('GET', KEYS[2]) or '0')
if failures >= tonumber(ARGV[4]) then
  limited = 1
else
  for i = 4, #KEYS do
    local n = redis.call('INCR', KEYS[i])
    if n == 1 then redis.call('EXPIRE', KEYS[i], ARGV[3]) end
    if n > tonumber(ARGV[i + 2]) then limited = 1 end
  end
  if ARGV[5] == '1' then
    local f = redis.call('INCR', KEYS[2])
    if f == 1 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
  end
end
redis.call('RPUSH', KEYS[1], ARGV[1 + limited])
local denylisted = 0
if KEYS[3] ~= '' then denylisted = redis.call('EXISTS', KEYS[3]) end
return {limited, denylisted}
"""


@dataclass(frozen=True)
class Verdict:
    retry_after: int  # seconds; 0 when not limited
    denylisted: bool = False

    @property
    def limited(self) -> bool:
        return self.retry_after > 0


class _Redis:
    """The module's connection pool and registered script, rebuilt if REDIS_URL changes.

    The hot path calls the script through a client that holds one pool connection per
    thread (`single_connection_client`): checking a connection out of the pool and back in
    for every call costs ~25 µs of CPU more (measured, redis-py 8). No retries: a failed
    call fails the request over to the database at once, and DOWN_BACKOFF keeps the next
    requests off Redis; a stale connection is caught first by `health_check_interval`.
    """

    def __init__(self, url: str):
        self.url = url
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
            health_check_interval=30,
            retry=Retry(NoBackoff(), 0),
        )
        self.script = self.client.register_script(LUA_SCRIPT)
        self._local = threading.local()

    def held(self) -> redis.Redis:
        """This thread's client on its own connection of the shared pool."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = redis.Redis(
                connection_pool=self.client.connection_pool, single_connection_client=True
            )
            self._local.client = client
        return client

    def run_script(self, keys: list[str], args: list) -> list:
        client = self.held()
        try:
            # EVALSHA with the registered script's digest: calling the Script object costs
            # ~7 µs more per request (measured) for the same command.
            return client.evalsha(self.script.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            # After a Redis restart or SCRIPT FLUSH: the Script object loads it again.
            return self.script(keys=keys, args=args, client=client)


_redis: _Redis | None = None
_redis_lock = threading.Lock()
_down_until = 0.0
_last_warning = 0.0


def redis_connection() -> _Redis | None:
    """The Redis connection, or None in embedded mode and while Redis is known to be down."""
    global _redis
    url = settings.REDIS_URL
    if not url or time.monotonic() < _down_until:
        return None
    current = _redis
    if current is None or current.url != url:
        with _redis_lock:
            current = _redis = _Redis(url)
    return current


def _redis_failed(exc: Exception) -> None:
    global _down_until, _last_warning
    now = time.monotonic()
    _down_until = now + DOWN_BACKOFF
    if now - _last_warning >= WARN_EVERY:
        _last_warning = now
        log.warning("Redis unavailable (%s): limits open, events to the database", exc)


def sink_reset() -> None:
    """Forget the connection and the down state (tests)."""
    global _redis, _down_until, _last_warning
    _redis = None
    _down_until = 0.0
    _last_warning = 0.0


def _window() -> tuple[int, int, int]:
    """(window length, window number, seconds left in it)."""
    window = max(1, int(settings.KEYWARD_RATE_LIMIT_WINDOW))
    now = time.time()
    number = int(now // window)
    left = max(1, math.ceil((number + 1) * window - now))
    return window, number, left


def emit(
    event: TokenEventRecord,
    *,
    ip: str | None,
    counters: list[tuple[str, str, int]],
    auth_failed: bool = False,
    denylist_jti: str = "",
) -> Verdict:
    """Count, rate-limit and record one request.

    `counters` are (kind, identity, limit), e.g. ("client", client_id, 6000). The per-IP
    failure counter applies to every call: once an address has failed to authenticate
    KEYWARD_RATE_LIMIT_FAILURES_PER_IP times in a window, all its requests get 429 until
    the window ends, so a correct guess cannot be told from a wrong one.
    """
    window, number, left = _window()
    fail_key = f"{COUNTER_PREFIX}fail:{ip}:{number}"
    counter_keys = [f"{COUNTER_PREFIX}{kind}:{ident}:{number}" for kind, ident, _ in counters]
    limits = [limit for _kind, _ident, limit in counters]
    failure_limit = settings.KEYWARD_RATE_LIMIT_FAILURES_PER_IP
    connection = redis_connection()
    if connection is not None:
        try:
            limited, denylisted = connection.run_script(
                [
                    EVENT_BUFFER_KEY,
                    fail_key,
                    DENYLIST_PREFIX + denylist_jti if denylist_jti else "",
                    *counter_keys,
                ],
                [
                    event.to_buffer(),
                    event.as_rate_limited().to_buffer(),
                    window + 1,
                    failure_limit,
                    "1" if auth_failed else "0",
                    *limits,
                ],
            )
            return Verdict(left if limited else 0, bool(denylisted))
        except (redis.RedisError, OSError) as exc:
            _redis_failed(exc)
            return _fallback(event, denylist_jti, retry_after=0)
    if settings.REDIS_URL:
        return _fallback(event, denylist_jti, retry_after=0)
    limited = _local_limit(fail_key, failure_limit, counter_keys, limits, auth_failed, window)
    return _fallback(event, denylist_jti, retry_after=left if limited else 0)


def _local_limit(fail_key, failure_limit, counter_keys, limits, auth_failed, window) -> bool:
    """The Lua script's logic on Django's cache (embedded mode, per process)."""
    if (cache.get(fail_key) or 0) >= failure_limit:
        return True
    limited = False
    for key, limit in zip(counter_keys, limits, strict=True):
        if _incr(key, window) > limit:
            limited = True
    if auth_failed:
        _incr(fail_key, window)
    return limited


def _incr(key: str, window: int) -> int:
    if cache.add(key, 1, window + 1):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, window + 1)
        return 1


def _fallback(event: TokenEventRecord, denylist_jti: str, *, retry_after: int) -> Verdict:
    if retry_after:
        event = event.as_rate_limited()
    try:
        token_events_write([event])
    except Exception:  # the event is lost, the request is not
        log.exception("Could not write token event %s", event.id)
    denylisted = bool(denylist_jti) and denylist_db_contains(denylist_jti)
    return Verdict(retry_after, denylisted)


def denylist_db_contains(jti: str) -> bool:
    return RevokedToken.objects.filter(jti=jti).exists()


def denylist_contains(jti: str) -> bool:
    """Is `jti` revoked? Redis first; the database when Redis is absent or down."""
    connection = redis_connection()
    if connection is not None:
        try:
            return bool(connection.held().exists(DENYLIST_PREFIX + jti))
        except redis.RedisError as exc:
            _redis_failed(exc)
    return denylist_db_contains(jti)


def denylist_add(jti: str, ttl: int) -> bool:
    """Denylist `jti` in Redis for `ttl` seconds; False when Redis is absent or down."""
    return denylist_add_many([(jti, ttl)])


# Commands per pipeline round trip when restoring many revocations.
DENYLIST_CHUNK = 1000


def denylist_add_many(entries: list[tuple[str, int]]) -> bool:
    """Denylist each (jti, ttl in seconds) in Redis, many per round trip (a pipeline);
    False when Redis is absent or down."""
    connection = redis_connection()
    if connection is None:
        return False
    try:
        for start in range(0, len(entries), DENYLIST_CHUNK):
            with connection.client.pipeline(transaction=False) as pipe:
                for jti, ttl in entries[start : start + DENYLIST_CHUNK]:
                    pipe.set(DENYLIST_PREFIX + jti, 1, ex=max(1, ttl))
                pipe.execute()
    except redis.RedisError as exc:
        _redis_failed(exc)
        return False
    return True
