"""Alert tasks: thin wrappers that take ids (or nothing) and call one function."""

from __future__ import annotations

import logging

from celery import shared_task

from .evaluation import detections_evaluate
from .notifications import RETRYABLE_ERRORS, delivery_send

log = logging.getLogger("keyward.alerts")


# expires: after an outage beat's backlog of ticks is dropped; the next run sees the same
# recent window anyway.
@shared_task(acks_late=True, ignore_result=True, soft_time_limit=25, time_limit=30, expires=25)
def evaluate_detections() -> dict:
    """Every 30 s (CELERY_BEAT_SCHEDULE): see alerts.evaluation.detections_evaluate."""
    result = detections_evaluate()
    if any(result.values()):
        log.info("detections: %s", result)
    return result


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=RETRYABLE_ERRORS,
    retry_backoff=True,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=6,
)
def send_alert_delivery(self, delivery_id: int) -> bool:
    # The last try marks the row failed instead of pending, so admins see it.
    final = self.request.retries >= self.max_retries
    return delivery_send(delivery_id, final_attempt=final)
