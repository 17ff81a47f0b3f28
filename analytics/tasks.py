from __future__ import annotations

from celery import shared_task

from .activity import overview_cache_warm
from .drain import token_events_drain
from .retention import retention_apply


# Registered under its name from when the drain lived in tokens: beat's schedule and
# messages already queued name it so, and renaming would strand them.
# acks_late: a worker killed mid-run gets the message redelivered; the drain itself is
# crash-safe either way (see analytics/drain.py). expires: when workers were down, beat's
# backlog of two-second ticks is dropped instead of run one after another.
@shared_task(
    name="tokens.tasks.drain_token_events",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=50,
    time_limit=60,
    expires=30,
)
def drain_token_events() -> int:
    """Beat runs this every few seconds (CELERY_BEAT_SCHEDULE)."""
    return token_events_drain()


# expires: a late run would only compute what the next one computes again.
@shared_task(ignore_result=True, soft_time_limit=15, time_limit=20, expires=10)
def warm_overview_cache() -> None:
    """Every 20 s (CELERY_BEAT_SCHEDULE): see analytics.activity.overview_cache_warm."""
    overview_cache_warm()


@shared_task(ignore_result=True, soft_time_limit=600, time_limit=660, expires=3000)
def apply_event_retention() -> None:
    """Hourly (CELERY_BEAT_SCHEDULE): see analytics.retention.retention_apply."""
    retention_apply()
