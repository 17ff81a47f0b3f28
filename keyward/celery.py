"""The Celery app, beat's scheduler and the workers' drain fallback.

The token-event pipeline must not hang on one process: beat records a heartbeat with every
task it sends, and every worker sends a drain itself when none has run for
KEYWARD_DRAIN_FALLBACK_SECONDS. tokens/pipeline.py reads both; docs/architecture.md has the
design.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from celery import Celery, bootsteps
from celery.beat import PersistentScheduler
from kombu.exceptions import OperationalError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyward.settings")

logger = logging.getLogger(__name__)

app = Celery("keyward")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class Scheduler(PersistentScheduler):
    """Celery's file-backed scheduler that creates its folder and records a heartbeat."""

    def setup_schedule(self) -> None:
        # The default file lives in var/ (development) or the temp folder (production); a
        # fresh checkout or container may not have the folder yet.
        Path(self.schedule_filename).parent.mkdir(parents=True, exist_ok=True)
        super().setup_schedule()

    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        result = super().apply_async(entry, producer=producer, advance=advance, **kwargs)
        self._heartbeat_record()
        return result

    def _heartbeat_record(self) -> None:
        from django.conf import settings

        if not settings.USE_REDIS:
            return
        import redis

        from tokens.pipeline import beat_heartbeat_record

        try:
            beat_heartbeat_record()
        except redis.RedisError as exc:
            logger.warning("beat heartbeat not recorded: %s", exc)


class DrainFallback(bootsteps.StartStopStep):
    """Sends the drain task when no drain has finished for a while (beat down, or its message
    lost), so token events keep reaching the database. Redis mode only."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, parent, **kwargs) -> None:
        super().__init__(parent, **kwargs)
        self.tref = None

    def start(self, parent) -> None:
        from django.conf import settings

        if not settings.USE_REDIS:
            return
        every = max(settings.KEYWARD_DRAIN_FALLBACK_SECONDS / 2, 0.5)
        self.tref = parent.timer.call_repeatedly(every, self.check, priority=10)

    def stop(self, parent) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    def check(self) -> None:
        import redis

        from analytics.tasks import drain_token_events
        from tokens.pipeline import drain_fallback_claim

        try:
            if drain_fallback_claim():
                logger.warning("token events: no drain ran lately (is beat running?); sending one")
                drain_token_events.delay()
        except (redis.RedisError, OperationalError) as exc:
            logger.warning("token events: drain fallback check failed: %s", exc)


app.steps["worker"].add(DrainFallback)
