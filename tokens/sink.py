"""Rate limits, token events and the denylist check in one cheap step per request.

Redis mode: one Lua script call (one round trip) checks the caller's failure counter,
increments the request counters, appends the event (as answered, or as rate-limited when over
a limit) to the event buffer and, for introspection, tells whether a jti is denylisted and
whether Redis may be trusted to say so (the denylist's completeness marker, below).
Everything goes through redis-py's public API: a registered script, a pipeline where several
commands go together, hiredis to parse replies when installed (it is a dependency).

Redis unavailable: limits fail open, the event is written to the database, the denylist is
read from the RevokedToken table, and a warning is logged at most every WARN_EVERY seconds.
For DOWN_BACKOFF seconds after a failure, requests skip Redis rather than retry it.

The denylist's truth is the RevokedToken table; Redis holds a copy that is trusted only
while DENYLIST_COMPLETE_KEY is there. It is set after a full copy (denylist_rebuild) and is
gone after a restart without persistence or a flush; without it, checks read the database
and the first of them rebuilds the copy. A revocation that could not reach Redis drops it
(denylist_cache, denylist_verify).

Embedded mode (no REDIS_URL): counters in Django's local cache (per process), events and
denylist in the database.

Counters use fixed windows of KEYWARD_RATE_LIMIT_WINDOW seconds: the key carries the window
number, so Retry-After is simply the time left in the window.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import multiprocessing.util
import os
import threading
import time
from dataclasses import dataclass

import hiredis
import redis
from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections
from django.utils import timezone
from redis.backoff import NoBackoff
from redis.retry import Retry

from audit.events import TokenEventRecord, event_store
from base.conf import setting

from .batching import Batch, Counted, LocalCounts, over_limit
from .buffer import EVENT_BUFFER_KEY
from .models import RevokedToken

log = logging.getLogger(__name__)

WARN_EVERY = 30.0
DOWN_BACKOFF = 1.0
DENYLIST_PREFIX = "keyward:revoked:"
# Present only while Redis holds every live revocation (see denylist_rebuild). Outside
# DENYLIST_PREFIX, so no jti can name it.
DENYLIST_COMPLETE_KEY = "keyward:denylist:complete"
DENYLIST_REBUILD_LOCK = "keyward:denylist:rebuild"
# Seconds between one process's attempts to rebuild an untrusted denylist.
REBUILD_RETRY = 1.0
COUNTER_PREFIX = "keyward:rl:"

# KEYS: 1 event buffer, 2 failure counter, 3 denylist key to test ("" for none), 4 the
#       denylist's completeness marker, 5.. counters
# ARGV: 1 the event as answered, 2 the same event as rate-limited (both to_buffer()), 3
#       counter TTL, 4 failure limit, 5 "1" if this request failed to authenticate, 6.. the
#       limit of each counter in KEYS[5..]
# Returns {limited (0/1), denylisted (0/1), trusted (0/1: the marker is there, so a missing
# denylist key means "not revoked"; only tested with a denylist key), the failure counter,
# then each counter's new value (none when the failure limit stopped the count)}: the totals
# this process's batched decisions start from (tokens/batching.py).
#
# Whether the request is limited is known only inside the script (atomically with the
# counters), and the event must be pushed in the same round trip. So the caller sends both
# encodings and the script pushes one: the rate-limit rewrite stays defined once, in
# TokenEventRecord.as_rate_limited(), for ~2.5 µs and ~300 bytes more per request. Pushing
# from the caller instead would take a second round trip for every limited request, which
# is exactly the traffic (brute force, floods) that must stay cheap.
LUA_SCRIPT = """
local limited = 0
local totals = {}
local failures = tonumber(redis.call('GET', KEYS[2]) or '0')
if failures >= tonumber(ARGV[4]) then
  limited = 1
else
  for i = 5, #KEYS do
    local n = redis.call('INCR', KEYS[i])
    if n == 1 then redis.call('EXPIRE', KEYS[i], ARGV[3]) end
    if n > tonumber(ARGV[i + 1]) then limited = 1 end
    totals[i - 4] = n
  end
  if ARGV[5] == '1' then
    failures = redis.call('INCR', KEYS[2])
    if failures == 1 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
  end
end
redis.call('RPUSH', KEYS[1], ARGV[1 + limited])
local denylisted, trusted = 0, 0
if KEYS[3] ~= '' then
  denylisted = redis.call('EXISTS', KEYS[3])
  trusted = redis.call('EXISTS', KEYS[4])
end
return {limited, denylisted, trusted, failures, unpack(totals)}
"""

# One send of what this process's requests queued (tokens/batching.py).
# KEYS: 1 event buffer, 2.. counters; ARGV: 1 counter TTL, 2..#KEYS each counter's increment
# (0: only its total is wanted), then the events (to_buffer()). Returns the counters' totals.
SEND_SCRIPT = """
local totals = {}
for i = 2, #KEYS do
  local total = redis.call('INCRBY', KEYS[i], ARGV[i])
  if total == tonumber(ARGV[i]) then redis.call('EXPIRE', KEYS[i], ARGV[1]) end
  totals[i - 1] = total
end
for first = #KEYS + 1, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[1], unpack(ARGV, first, math.min(first + 999, #ARGV)))
end
return totals
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
        self.send_script = self.client.register_script(SEND_SCRIPT)
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

    def run_script(self, keys: list[str], args: list, script=None) -> list:
        script = script or self.script
        client = self.held()
        try:
            # EVALSHA with the registered script's digest, sent and read on the thread's
            # own connection (redis-py's Connection.send_packed_command / read_response:
            # they check the connection's health and disconnect on any socket error or
            # timeout). `client.evalsha` adds only what this call does not need (a lock for
            # a connection no other thread uses, a retry wrapper with zero retries, metrics
            # hooks): 125k against 78k instructions per call (callgrind), ~4% of a token
            # request. Calling the Script object costs more still. hiredis packs the
            # command (str as UTF-8, int and float as text, like redis-py's encoder);
            # redis-py's own packer runs its encoder in Python per argument, ~40k
            # instructions more for these 16 (callgrind).
            connection = client.connection
            command = ("EVALSHA", script.sha, len(keys), *keys, *args)
            connection.send_packed_command([hiredis.pack_command(command)])
            return connection.read_response()
        except redis.exceptions.NoScriptError:
            # After a Redis restart or SCRIPT FLUSH: the Script object loads it again.
            return script(keys=keys, args=args, client=client)


_redis: _Redis | None = None
_redis_lock = threading.Lock()
_down_until = 0.0
_last_warning = 0.0
# Set when this process revoked a token that only reached the database: the completeness
# marker must go before this process trusts Redis again (see denylist_cache).
_marker_stale = False
_next_rebuild_try = 0.0


def redis_connection() -> _Redis | None:
    """The Redis connection, or None in embedded mode and while Redis is known to be down.

    After this process revoked a token that reached only the database, the first call that
    reaches Redis again drops the denylist's marker before anything trusts it.
    """
    global _redis
    url = setting("REDIS_URL")
    if not url or time.monotonic() < _down_until:
        return None
    current = _redis
    if current is None or current.url != url:
        with _redis_lock:
            current = _redis = _Redis(url)
    if _marker_stale and not _marker_drop(current):
        return None
    return current


def _redis_failed(exc: Exception) -> None:
    global _down_until, _last_warning
    now = time.monotonic()
    _down_until = now + DOWN_BACKOFF
    if now - _last_warning >= WARN_EVERY:
        _last_warning = now
        log.warning("Redis unavailable (%s): limits open, events to the database", exc)


def sink_reset() -> None:
    """Forget the connection, the down state and the queued counts and events (tests)."""
    global _redis, _down_until, _last_warning, _marker_stale, _next_rebuild_try, _local_counts
    _local_counts = LocalCounts()
    _redis = None
    _down_until = 0.0
    _last_warning = 0.0
    _marker_stale = False
    _next_rebuild_try = 0.0


def _window() -> tuple[int, int, int]:
    """(window length, window number, seconds left in it)."""
    window = max(1, int(setting("KEYWARD_RATE_LIMIT_WINDOW")))
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

    With Redis, a request this process can decide alone is queued and sent with others
    (tokens/batching.py); one with a counter this process does not know, or a denylist
    check, runs the script now.
    """
    window, number, left = _window()
    counted = Counted(
        fail_key=f"{COUNTER_PREFIX}fail:{ip}:{number}",
        failure_limit=setting("KEYWARD_RATE_LIMIT_FAILURES_PER_IP"),
        counter_keys=[f"{COUNTER_PREFIX}{kind}:{ident}:{number}" for kind, ident, _ in counters],
        limits=[limit for _kind, _ident, limit in counters],
        auth_failed=auth_failed,
    )
    connection = redis_connection()
    if connection is not None:
        if not denylist_jti:
            limited = _queue(connection, event, counted, ttl=window + 1)
            if limited is not None:
                return Verdict(left if limited else 0)
        return _emit_now(connection, event, counted, ttl=window + 1, left=left, jti=denylist_jti)
    if settings.REDIS_URL:
        return _fallback(event, denylist_jti, retry_after=0)
    limited = over_limit(lambda key: cache.get(key) or 0, lambda key: _incr(key, window), counted)
    return _fallback(event, denylist_jti, retry_after=left if limited else 0)


def _emit_now(
    connection: _Redis, event: TokenEventRecord, counted: Counted, *, ttl: int, left: int, jti: str
) -> Verdict:
    """One script call for one request: the limits, its event and the denylist check."""
    try:
        limited, denylisted, trusted, failures, *totals = connection.run_script(
            [
                EVENT_BUFFER_KEY,
                counted.fail_key,
                DENYLIST_PREFIX + jti if jti else "",
                DENYLIST_COMPLETE_KEY,
                *counted.counter_keys,
            ],
            [
                event.to_buffer(),
                event.to_buffer_rate_limited(),
                ttl,
                counted.failure_limit,
                "1" if counted.auth_failed else "0",
                *counted.limits,
            ],
        )
    except (redis.RedisError, OSError) as exc:
        _redis_failed(exc)
        return _fallback(event, jti, retry_after=0)
    learned = {counted.fail_key: failures, **dict(zip(counted.counter_keys, totals, strict=False))}
    _local_counts.learn(learned, now=time.monotonic())
    if jti and not denylisted and not trusted:
        denylisted = _denylist_untrusted(connection, jti)
    return Verdict(left if limited else 0, bool(denylisted))


# --- Batched sends --------------------------------------------------------------------------

_local_counts = LocalCounts()
_sweeper_started = False


def _sweeper_forgotten() -> None:
    global _sweeper_started
    _sweeper_started = False


# A forked worker has none of its parent's threads: it starts its own sweeper.
os.register_at_fork(after_in_child=_sweeper_forgotten)


def _queue(connection: _Redis, event: TokenEventRecord, counted: Counted, *, ttl: int):
    """Decide and queue the request here; send the batch if one is due. None: not decidable
    here (a counter this process does not know)."""
    interval = setting("KEYWARD_TOKEN_EVENT_SEND_INTERVAL")
    limited, batch = _local_counts.queue(event, counted, now=time.monotonic(), interval=interval)
    if limited is None:
        return None
    if batch is not None:
        _send(connection, batch, ttl)
    _sweeper_start()
    return limited


def _send(connection: _Redis | None, batch: Batch, ttl: int) -> None:
    keys = list(batch.increments)
    totals = None
    if connection is not None:
        try:
            totals = connection.run_script(
                [EVENT_BUFFER_KEY, *keys],
                [
                    ttl,
                    *batch.increments.values(),
                    *(
                        e.to_buffer_rate_limited() if limited else e.to_buffer()
                        for e, limited in batch.events
                    ),
                ],
                script=connection.send_script,
            )
        except (redis.RedisError, OSError) as exc:
            _redis_failed(exc)
    _local_counts.sent(
        None if totals is None else dict(zip(keys, totals, strict=True)), now=time.monotonic()
    )
    if totals is None:
        _events_to_database([e.as_rate_limited() if limited else e for e, limited in batch.events])


def events_flush() -> None:
    """Send everything this process has queued now (tests, and at exit)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        batch = _local_counts.take_all()
        if batch is not None:
            _send(redis_connection(), batch, _window()[0] + 1)
        elif not _local_counts.busy():
            return
        else:
            time.sleep(0.001)


def _sweeper_start() -> None:
    """Start this process's sweeper once (a flag, not the pid: getpid is a syscall, and this
    runs on every queued request)."""
    global _sweeper_started
    if _sweeper_started:
        return
    with _redis_lock:
        if not _sweeper_started:
            _sweeper_started = True
            threading.Thread(target=_sweep, name="keyward-event-sender", daemon=True).start()
            # What is still queued goes out when the process ends: atexit for a plain
            # process (runserver, a shell), multiprocessing's finalizers for a server's
            # worker process (granian's end through os._exit, which skips atexit).
            atexit.register(events_flush)
            multiprocessing.util.Finalize(None, events_flush, exitpriority=10)


def _sweep() -> None:
    """Sends what requests queued and no later request sent: a send interval after the
    last send, the queue goes out even if no request comes."""
    while True:
        interval = setting("KEYWARD_TOKEN_EVENT_SEND_INTERVAL")
        # At least every second, so a shorter interval set later is followed soon.
        time.sleep(min(max(interval, 0.005), 1.0))
        try:
            batch = _local_counts.due(now=time.monotonic(), interval=interval)
            if batch is not None:
                _send(redis_connection(), batch, _window()[0] + 1)
        except Exception:  # the thread must outlive any one failure
            log.exception("Could not send queued token events")
        finally:
            close_old_connections()  # after a database fallback, as a request would


def _incr(key: str, window: int) -> int:
    if cache.add(key, 1, window + 1):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, window + 1)
        return 1


def _events_to_database(events: list[TokenEventRecord]) -> None:
    try:
        # The store belongs to analytics, above tokens: reached through the setting that
        # names it (audit.events.event_store), not imported.
        event_store().token_events_write(events)
    except Exception:  # the events are lost, the requests are not
        log.exception("Could not write %d token event(s)", len(events))


def _fallback(event: TokenEventRecord, denylist_jti: str, *, retry_after: int) -> Verdict:
    _events_to_database([event.as_rate_limited() if retry_after else event])
    denylisted = bool(denylist_jti) and denylist_db_contains(denylist_jti)
    return Verdict(retry_after, denylisted)


def denylist_db_contains(jti: str) -> bool:
    return RevokedToken.objects.filter(jti=jti).exists()


def denylist_contains(jti: str) -> bool:
    """Is `jti` revoked? Redis when it holds the whole denylist; the database otherwise.

    One round trip: MGET reads the jti's key and the completeness marker together.
    """
    connection = redis_connection()
    if connection is not None:
        try:
            denylisted, trusted = connection.held().mget(
                DENYLIST_PREFIX + jti, DENYLIST_COMPLETE_KEY
            )
        except (redis.RedisError, OSError) as exc:
            _redis_failed(exc)
        else:
            if denylisted is not None or trusted is not None:
                return denylisted is not None
            return _denylist_untrusted(connection, jti)
    return denylist_db_contains(jti)


def _denylist_untrusted(connection: _Redis, jti: str) -> bool:
    """The answer when Redis lacks the completeness marker: the database's. This process then
    tries to rebuild the cache (at most every REBUILD_RETRY seconds; the lock in
    denylist_rebuild lets one process at a time do it, the others keep reading the database)."""
    global _next_rebuild_try
    revoked = denylist_db_contains(jti)
    now = time.monotonic()
    if now >= _next_rebuild_try:
        _next_rebuild_try = now + REBUILD_RETRY
        try:
            denylist_rebuild(connection)
        except Exception:  # the answer above stands; the next try or the beat task rebuilds
            log.exception("Could not rebuild the token denylist in Redis")
    return revoked


def denylist_add(jti: str, ttl: int) -> bool:
    """Denylist `jti` in Redis for `ttl` seconds; False when Redis is absent or down."""
    return denylist_add_many([(jti, ttl)])


def denylist_cache(jti: str, ttl: int) -> None:
    """Put a revocation whose RevokedToken row is committed into Redis.

    When Redis cannot take it, the cache is incomplete but its marker may survive (a Redis
    that was unreachable, not restarted). So: flag the row (the beat task denylist_verify
    drops the marker while such rows exist) and drop the marker from this process as soon
    as it reaches Redis again (redis_connection). Until the marker is gone, a process that
    did not notice the outage may still trust Redis: at most one beat interval (5 s).
    """
    global _marker_stale
    if denylist_add(jti, ttl) or not settings.REDIS_URL:
        return
    RevokedToken.objects.filter(jti=jti).update(missing_from_redis=True)
    _marker_stale = True
    redis_connection()  # drops the marker now if Redis answers again


def _marker_drop(connection: _Redis) -> bool:
    global _marker_stale
    try:
        connection.held().delete(DENYLIST_COMPLETE_KEY)
    except (redis.RedisError, OSError) as exc:
        _redis_failed(exc)
        return False
    _marker_stale = False
    return True


# Commands per pipeline round trip when restoring many revocations.
DENYLIST_CHUNK = 1000


def denylist_add_many(entries: list[tuple[str, int]]) -> bool:
    """Denylist each (jti, ttl in seconds) in Redis, many per round trip (a pipeline);
    False when Redis is absent or down."""
    connection = redis_connection()
    if connection is None:
        return False
    try:
        _denylist_set(connection, entries)
    except (redis.RedisError, OSError) as exc:
        _redis_failed(exc)
        return False
    return True


def _denylist_set(connection: _Redis, entries: list[tuple[str, int]]) -> None:
    for start in range(0, len(entries), DENYLIST_CHUNK):
        with connection.client.pipeline(transaction=False) as pipe:
            for jti, ttl in entries[start : start + DENYLIST_CHUNK]:
                pipe.set(DENYLIST_PREFIX + jti, 1, ex=max(1, ttl))
            pipe.execute()


def denylist_rebuild(connection: _Redis | None = None) -> int | None:
    """Copy every live RevokedToken row into Redis, then mark the Redis denylist complete.
    Returns the rows copied; None when Redis is absent or down, or another process rebuilds.

    1. Take the rebuild lock (not blocking): one process copies, the others read the database.
    2. Read the live rows (jti, expiry, missing_from_redis).
    3. SET their keys with their TTLs, pipelined.
    4. SET the marker; from now on a missing key means "not revoked".
    5. Clear missing_from_redis on the rows copied. Rows still flagged were revoked after
       step 2 by a process that could not reach Redis: drop the marker again.

    Why a revocation made during the rebuild is not lost: the revoke path commits its row
    first, then SETs its key. A row committed before step 2 is copied. A row committed
    after step 2 is not, but its revocation then SETs its own key, which does not depend
    on the marker; until that SET, the revocation request has not been answered, so a
    check in between is one that came before the revocation. If that SET fails, the row is
    flagged before the revoke answers: step 5 sees the flag and drops the marker, or, when
    the flag lands after step 5, denylist_verify does within one beat interval.
    """
    connection = connection or redis_connection()
    if connection is None:
        return None
    lock = connection.client.lock(DENYLIST_REBUILD_LOCK, timeout=300, blocking=False)
    try:
        if not lock.acquire():
            return None
        try:
            return _denylist_copy(connection)
        finally:
            with contextlib.suppress(redis.exceptions.LockError):
                lock.release()
    except (redis.RedisError, OSError) as exc:
        _redis_failed(exc)
        return None


def _denylist_copy(connection: _Redis) -> int:
    now = timezone.now()
    rows = list(
        RevokedToken.objects.filter(expires_at__gt=now).values_list(
            "jti", "expires_at", "missing_from_redis"
        )
    )
    _denylist_set(connection, [(jti, int((exp - now).total_seconds()) + 1) for jti, exp, _ in rows])
    denylist_mark_complete(connection, copied_flagged=[jti for jti, _, flagged in rows if flagged])
    return len(rows)


def denylist_mark_complete(connection: _Redis, *, copied_flagged: list[str]) -> bool:
    """Steps 4 and 5 of denylist_rebuild, once the rows are copied: set the marker, clear the
    flags of the copied rows, and take the marker back if a row is still flagged (revoked
    during the copy by a process that could not write Redis). True when the marker stays."""
    connection.client.set(DENYLIST_COMPLETE_KEY, 1)
    if copied_flagged:
        RevokedToken.objects.filter(jti__in=copied_flagged).update(missing_from_redis=False)
    if _flagged_live_rows().exists():
        connection.client.delete(DENYLIST_COMPLETE_KEY)
        return False
    return True


def _flagged_live_rows():
    # Expired rows are left out: the rebuild does not copy them (their tokens are refused
    # anyway), so their flag would otherwise drop the marker until the hourly purge.
    return RevokedToken.objects.filter(missing_from_redis=True, expires_at__gt=timezone.now())


def denylist_verify() -> str:
    """The beat task's check (every few seconds), the backstop of the two repairs on the hot
    path: revocations that reached only the database drop the marker (any process may still
    trust a Redis that kept it), and a missing marker is rebuilt without waiting for traffic.
    """
    connection = redis_connection()
    if connection is None:
        return "no-redis"
    try:
        if _flagged_live_rows().exists():
            connection.client.delete(DENYLIST_COMPLETE_KEY)
        elif connection.client.exists(DENYLIST_COMPLETE_KEY):
            return "complete"
    except (redis.RedisError, OSError) as exc:
        _redis_failed(exc)
        return "no-redis"
    return "rebuilt" if denylist_rebuild(connection) is not None else "busy"
