from __future__ import annotations

from celery import shared_task

from .drain import token_events_drain
from .services import revocations_purge, signing_keys_rotate_if_due
from .sink import denylist_verify


# acks_late: a worker killed mid-run gets the message redelivered; the drain itself is
# crash-safe either way (see tokens/drain.py). expires: when workers were down, beat's
# backlog of two-second ticks is dropped instead of run one after another.
@shared_task(acks_late=True, ignore_result=True, soft_time_limit=50, time_limit=60, expires=30)
def drain_token_events() -> int:
    """Beat runs this every few seconds (CELERY_BEAT_SCHEDULE)."""
    return token_events_drain()


@shared_task
def purge_expired_revocations() -> int:
    """Hourly (CELERY_BEAT_SCHEDULE): see tokens.services.revocations_purge."""
    return revocations_purge()


# expires: a backlog of missed runs is dropped; the next one does the same check.
@shared_task(ignore_result=True, soft_time_limit=50, time_limit=60, expires=10)
def verify_denylist() -> str:
    """Every few seconds (CELERY_BEAT_SCHEDULE): see tokens.sink.denylist_verify."""
    return denylist_verify()


@shared_task
def rotate_signing_keys_if_due() -> str:
    """Daily (CELERY_BEAT_SCHEDULE): see tokens.services.signing_keys_rotate_if_due."""
    return signing_keys_rotate_if_due().outcome.value
