from __future__ import annotations

from celery import shared_task

from .services import revocations_purge


@shared_task
def purge_expired_revocations() -> int:
    """Hourly (CELERY_BEAT_SCHEDULE): see tokens.services.revocations_purge."""
    return revocations_purge()
