"""Alert tasks: thin wrappers that take ids (or nothing) and call one function."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from celery import shared_task

from .evaluation import (
    AFTER_DRAIN_MIN_INTERVAL_SECONDS,
    after_batch_drained,
    after_drain_defer_claim,
    detections_evaluate,
)
from .notifications import RETRYABLE_ERRORS, deliveries_prune, delivery_send

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


@shared_task(acks_late=True, ignore_result=True, soft_time_limit=25, time_limit=30, expires=25)
def evaluate_after_drain(newest: float, deferred: bool = False) -> dict | None:
    """After a stored batch (alerts/receivers.py); `newest`: its latest event, epoch s.
    Throttled, it asks for one deferred run at the end of the interval."""
    moment = datetime.fromtimestamp(newest, tz=UTC)
    result = after_batch_drained(newest=moment)
    if result is None and not deferred and after_drain_defer_claim(newest=moment):
        evaluate_after_drain.apply_async(
            (newest, True), countdown=AFTER_DRAIN_MIN_INTERVAL_SECONDS + 1
        )
    if result and any(result.values()):
        log.info("detections after a batch: %s", result)
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


@shared_task(ignore_result=True, soft_time_limit=300, time_limit=330, expires=3000)
def prune_alert_deliveries() -> int:
    """Hourly (CELERY_BEAT_SCHEDULE): see alerts.notifications.deliveries_prune."""
    return deliveries_prune()
