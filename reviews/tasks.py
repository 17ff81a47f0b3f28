"""Scope review tasks: thin wrappers over plain functions."""

from __future__ import annotations

import logging

from celery import shared_task

from .campaigns import campaigns_run
from .scan import findings_scan

log = logging.getLogger("keyward.reviews")


@shared_task(acks_late=True, ignore_result=True, soft_time_limit=240, time_limit=300)
def scan_review_findings() -> dict:
    """Hourly (CELERY_BEAT_SCHEDULE): see reviews.scan.findings_scan."""
    counts = findings_scan()
    log.info("review findings: %s", counts)
    return counts


@shared_task(acks_late=True, ignore_result=True, soft_time_limit=240, time_limit=300)
def run_review_campaigns() -> dict:
    """Every 15 minutes (CELERY_BEAT_SCHEDULE): see reviews.campaigns.campaigns_run."""
    counts = campaigns_run()
    log.info("review campaigns: %s", counts)
    return counts
