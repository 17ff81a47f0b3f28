"""Receivers of the signals of the apps below alerts (connected in AlertsConfig.ready)."""

from __future__ import annotations

from datetime import datetime

from .tasks import evaluate_after_drain


def events_stored(*, inserted: int, newest: datetime, **kwargs) -> None:
    """New events are committed (analytics.signals.events_stored): evaluate on a worker, so
    neither the drain nor an ingest request waits for the detections."""
    evaluate_after_drain.delay(newest.timestamp())
