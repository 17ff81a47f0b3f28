"""Is the token-event pipeline moving? What /healthz, the console banner and
`manage.py pipeline_health` report, and the workers' fallback when beat is silent.

Three signals, all in Redis and read in one round trip:
- beat's heartbeat: the time beat last sent a task (written by keyward.celery.Scheduler);
- the drain's heartbeat: the time a drain run last finished (analytics/drain.py);
- the oldest waiting event: the head of the processing list (a batch being written or left
  by a killed run) or else of the buffer; events carry `occurred_at`.

Embedded mode (no Redis) has nothing to report: events go straight to the database and no
drain is needed; bin/dev's honcho stops every process when one of them dies.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

import orjson
import redis
from django.conf import settings
from django.core.cache import cache as django_cache
from django.utils.timesince import timesince

from .buffer import DRAIN_HEARTBEAT_KEY, EVENT_BUFFER_KEY, EVENT_PROCESSING_KEY, event_buffer_redis

BEAT_HEARTBEAT_KEY = "keyward:pipeline:beat-sent-at"
# Held for KEYWARD_DRAIN_FALLBACK_SECONDS by the worker that sends a fallback drain, so
# several workers send one between them, not one each.
DRAIN_FALLBACK_CLAIM_KEY = "keyward:pipeline:drain-fallback"
STATUS_CACHE_KEY = "keyward:pipeline:status"
STATUS_CACHE_SECONDS = 5
# What pipeline_health --check can select (Redis being unreachable fails every check).
CHECKS = ("beat", "drain", "backlog")

# Plain text, no markup: the same words go to the console banner, /healthz and the CLI.
BEAT_REMEDY = (
    'Start one Celery beat process ("celery -A keyward beat"; with docker compose, '
    '"docker compose up -d beat") and check its log.'
)
WORKER_REMEDY = (
    'Start a Celery worker ("celery -A keyward worker"; with docker compose, '
    '"docker compose up -d worker") and check its log for drain errors.'
)


@dataclass(frozen=True)
class PipelineProblem:
    kind: str  # one of CHECKS, or "redis"
    what: str  # plain words, with since when
    remedy: str
    since: datetime | None = None

    def __str__(self) -> str:
        return f"{self.what} {self.remedy}"


@dataclass(frozen=True)
class PipelineStatus:
    problems: tuple[PipelineProblem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


@cache
def _health_redis(url: str) -> redis.Redis:
    # Short timeouts: a health check must answer quickly even when Redis does not.
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def beat_heartbeat_record() -> None:
    """Beat sent a task just now."""
    event_buffer_redis().set(BEAT_HEARTBEAT_KEY, time.time())


def pipeline_status() -> PipelineStatus:
    """The pipeline's problems now; none in embedded mode."""
    if not settings.USE_REDIS:
        return PipelineStatus()
    try:
        with _health_redis(settings.REDIS_URL).pipeline(transaction=False) as pipe:
            pipe.get(BEAT_HEARTBEAT_KEY)
            pipe.get(DRAIN_HEARTBEAT_KEY)
            pipe.lindex(EVENT_PROCESSING_KEY, 0)
            pipe.lindex(EVENT_BUFFER_KEY, 0)
            pipe.llen(EVENT_BUFFER_KEY)
            beat_at, drained_at, in_flight, head, waiting = pipe.execute()
    except redis.RedisError as exc:
        return PipelineStatus(
            (
                PipelineProblem(
                    "redis",
                    # The class only: /healthz is public, the message names hosts.
                    f"Redis cannot be reached ({exc.__class__.__name__}): token events go "
                    "to the database directly and rate limits are not enforced.",
                    "Check REDIS_URL and that Redis is running.",
                ),
            )
        )
    now = time.time()
    problems = [
        _beat_problem(_float(beat_at), now),
        _drain_problem(_float(drained_at), now),
        _backlog_problem(_occurred_at(in_flight or head), int(waiting), now),
    ]
    return PipelineStatus(tuple(p for p in problems if p is not None))


def pipeline_status_cached() -> PipelineStatus:
    """pipeline_status(), shared by all processes for a few seconds (the console banner)."""
    status = django_cache.get(STATUS_CACHE_KEY)
    if status is None:
        status = pipeline_status()
        django_cache.set(STATUS_CACHE_KEY, status, STATUS_CACHE_SECONDS)
    return status


def drain_fallback_claim() -> bool:
    """True when no drain has finished for KEYWARD_DRAIN_FALLBACK_SECONDS and the caller
    won the right to send one now (at most one sender per period among all workers)."""
    overdue = settings.KEYWARD_DRAIN_FALLBACK_SECONDS
    client = event_buffer_redis()
    drained_at = _float(client.get(DRAIN_HEARTBEAT_KEY))
    if drained_at is not None and time.time() - drained_at < overdue:
        return False
    return bool(client.set(DRAIN_FALLBACK_CLAIM_KEY, 1, nx=True, px=int(overdue * 1000)))


def _beat_problem(sent_at: float | None, now: float) -> PipelineProblem | None:
    if sent_at is None:
        return PipelineProblem(
            "beat", "Celery beat has not sent any task (no heartbeat).", BEAT_REMEDY
        )
    if now - sent_at <= settings.KEYWARD_PIPELINE_STALE_SECONDS:
        return None
    since = _at(sent_at)
    return PipelineProblem(
        "beat",
        f"Celery beat has not sent a task since {_when(since)}: scheduled jobs "
        "(secret scans, key rotation, purges) are not running.",
        BEAT_REMEDY,
        since,
    )


def _drain_problem(drained_at: float | None, now: float) -> PipelineProblem | None:
    if drained_at is None:
        return PipelineProblem(
            "drain", "No Celery worker has run the token-event drain (no heartbeat).", WORKER_REMEDY
        )
    if now - drained_at <= settings.KEYWARD_PIPELINE_STALE_SECONDS:
        return None
    since = _at(drained_at)
    return PipelineProblem(
        "drain",
        f"No Celery worker has run the token-event drain since {_when(since)}.",
        WORKER_REMEDY,
        since,
    )


def _backlog_problem(oldest: float | None, waiting: int, now: float) -> PipelineProblem | None:
    if oldest is None or now - oldest <= settings.KEYWARD_PIPELINE_STALE_SECONDS:
        return None
    since = _at(oldest)
    return PipelineProblem(
        "backlog",
        f"{waiting:,} token events are waiting in Redis; the oldest arrived {_when(since)}, "
        "so it is not in the database or the console yet.",
        WORKER_REMEDY,
        since,
    )


def _occurred_at(item: bytes | None) -> float | None:
    if item is None:
        return None
    try:
        return float(orjson.loads(item)["occurred_at"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None  # a malformed item; the drain logs and drops it


def _float(value: bytes | None) -> float | None:
    return float(value) if value is not None else None


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _when(moment: datetime) -> str:
    # timesince joins number and unit with a no-break space; JSON readers want a plain one.
    ago = timesince(moment).replace("\xa0", " ")
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC ({ago} ago)"
