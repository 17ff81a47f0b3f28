from __future__ import annotations

from celery import shared_task

from .services import revocations_purge, signing_keys_rotate_if_due
from .sink import denylist_verify


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
