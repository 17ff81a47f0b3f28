"""Secret-lifecycle Celery tasks: thin wrappers that take ids (or nothing), call one function."""

from __future__ import annotations

import logging
from dataclasses import asdict

from celery import shared_task

from .notifications import RETRYABLE_ERRORS, notification_send
from .scan import secrets_scan

log = logging.getLogger("keyward.tasks")


@shared_task(acks_late=True)
def scan_stale_secrets() -> dict:
    """Hourly (CELERY_BEAT_SCHEDULE): flag stale secrets and dormant clients."""
    result = secrets_scan()
    log.info("secrets scan: %s", result)
    return asdict(result)


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=RETRYABLE_ERRORS,
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=5,
)
def send_notification(self, notification_log_id: int) -> bool:
    # The last try marks the row failed instead of pending, so admins see it.
    final = self.request.retries >= self.max_retries
    return notification_send(notification_log_id, final_attempt=final)
