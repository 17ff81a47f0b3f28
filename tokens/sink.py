"""Rate limits, token events and the denylist check in one cheap step per request.

Redis mode: one Lua script call (one round trip) checks the caller's failure counter,
increments the request counters, appends the event (rewritten to `rate_limited` when over a
limit) to the ingestion buffer and, for introspection, tells whether a jti is denylisted.

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

import orjson
import redis
from django.conf import settings
from django.core.cache import cache

from audit.ingest import EVENT_BUFFER_KEY, token_events_write

from .models import RevokedToken

log = logging.getLogger(__name__)

WARN_EVERY = 30.0
DOWN_BACKOFF = 1.0
DENYLIST_PREFIX = "keyward:revoked:"
COUNTER_PREFIX = "keyward:rl:"

# KEYS: 1 event buffer, 2 failure counter, 3 denylist key to test ("" for none), 4.. counters
# ARGV: 1 event JSON, 2 counter TTL, 3 failure limit, 4 "1" if this request failed to
#       authenticate, 5.. the limit of each counter in KEYS[4..]
# Returns {limited (0/1), denylisted (0/1)}.
LUA_SCRIPT = """
local limited = 0
local failures = tonumber(redis.call('GET', KEYS[2]) or '0')
if failures >= tonumber(ARGV[3]) then
  limited = 1
else
  for i = 4, #KEYS do
    local n = redis.call('INCR', KEYS[i])
    if n == 1 then redis.call('EXPIRE', KEYS[i], ARGV[2]) end
    if n > tonumber(ARGV[i + 1]) then limited = 1 end
  end
  if ARGV[4] == '1' then
    local f = redis.call('INCR', KEYS[2])
    if f == 1 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
  end
end
local event = ARGV[1]
if limited == 1 then
  local e = cjson.decode(event)
  e['outcome'] = 'failure'
  e['reason'] = 'rate_limited'
  e['status_code'] = 429
  e['jti'] = ''
  e['scopes_granted'] = ''
  event = cjson.encode(e)
end
redis.call('RPUSH', KEYS[1], event)
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

    The hot path holds one pool connection per thread and talks to it directly: redis-py's
    `Script.__call__` costs ~60 µs of CPU per call (pool checkout, observability hooks),
    `send_command` + `read_response` on a held connection ~14 µs (measured, redis-py 8).
    """

    def __init__(self, url: str):
        self.url = url
        self.client = redis.Redis.from_url(
            url, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=30
        )
        self.script = self.client.register_script(LUA_SCRIPT)
        self.sha = self.script.sha.encode()
        self._local = threading.local()

    def run_script(self, keys: list[str], args: list) -> list:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self.client.connection_pool.get_connection()
            self._local.connection = connection
        try:
            connection.send_packed_command(
                [resp_command(b"EVALSHA", self.sha, len(keys), *keys, *args)]
            )
            try:
                return connection.read_response()
            except redis.exceptions.NoScriptError:
                # First call after a Redis restart or SCRIPT FLUSH: load it and go on.
                connection.send_command("EVAL", LUA_SCRIPT, len(keys), *keys, *args)
                return connection.read_response()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            self._local.connection = None
            connection.disconnect()
            self.client.connection_pool.release(connection)
            raise


def resp_command(*parts: bytes | str | int) -> bytes:
    """One command in Redis's wire format (RESP). redis-py's general-purpose packer spent
    ~40 µs per token request on the script's 14 arguments; this spends a few."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


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
    event: dict,
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
                    orjson.dumps(event),
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


def _fallback(event: dict, denylist_jti: str, *, retry_after: int) -> Verdict:
    if retry_after:
        event = event | {
            "outcome": "failure",
            "reason": "rate_limited",
            "status_code": 429,
            "jti": "",
            "scopes_granted": "",
        }
    try:
        token_events_write([event])
    except Exception:  # the event is lost, the request is not
        log.exception("Could not write token event %s", event.get("id"))
    denylisted = bool(denylist_jti) and denylist_db_contains(denylist_jti)
    return Verdict(retry_after, denylisted)


def denylist_db_contains(jti: str) -> bool:
    return RevokedToken.objects.filter(jti=jti).exists()


def denylist_contains(jti: str) -> bool:
    """Is `jti` revoked? Redis first; the database when Redis is absent or down."""
    connection = redis_connection()
    if connection is not None:
        try:
            return bool(connection.client.exists(DENYLIST_PREFIX + jti))
        except redis.RedisError as exc:
            _redis_failed(exc)
    return denylist_db_contains(jti)


def denylist_add(jti: str, ttl: int) -> bool:
    """Denylist `jti` in Redis for `ttl` seconds; False when Redis is absent or down."""
    connection = redis_connection()
    if connection is None:
        return False
    try:
        connection.client.set(DENYLIST_PREFIX + jti, 1, ex=max(1, ttl))
    except redis.RedisError as exc:
        _redis_failed(exc)
        return False
    return True
