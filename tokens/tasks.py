from __future__ import annotations

from celery import shared_task

from .services import revocations_purge, signing_keys_rotate_if_due


@shared_task
def purge_expired_revocations() -> int:
    """Hourly (CELERY_BEAT_SCHEDULE): see tokens.services.revocations_purge."""
    return revocations_purge()


@shared_task
def rotate_signing_keys_if_due() -> str:
    """Daily (CELERY_BEAT_SCHEDULE): see tokens.services.signing_keys_rotate_if_due."""
    return signing_keys_rotate_if_due().outcome.value
