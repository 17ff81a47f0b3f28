"""One evaluation run: every implemented detection over recent events, then notifications.

`detections_evaluate` is a plain function. A thin Celery task runs it on beat's schedule
(alerts.tasks.evaluate_detections, every 30 s), and `after_batch_drained` runs after each
batch of events the store commits (analytics' `events_stored` signal, alerts/receivers.py),
so alerts follow events within seconds instead of waiting for the next tick.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime

from django.core.cache import cache
from django.utils import timezone

from clients.models import Client

from .detections import (
    CATALOGUE,
    RECENT_HORIZON,
    SAMPLE_EVENTS,
    Config,
    Detection,
    Finding,
    config_for,
    environments_of,
    overrides_load,
    window_words,
)
from .models import ENVIRONMENT_ANY
from .notifications import notifications_plan
from .services import alert_raise, alerts_auto_resolve

log = logging.getLogger("keyward.alerts")


def detections_evaluate(*, now: datetime | None = None) -> dict[str, int]:
    """Run every evaluated rule once; returns counts of what happened (opened, updated…).

    1. Load admins' overrides once; per rule, the effective config of each environment.
    2. Query once per distinct window with the lowest threshold and minimum any environment
       uses, then keep each finding only where its own environment's config agrees.
    3. Raise (or update) an alert per finding with the numbers, threshold, window and a few
       sample event ids as evidence.
    4. Resolve alerts that went quiet; plan notification updates.
    """
    now = now or timezone.now()
    overrides = overrides_load()
    outcome: Counter[str] = Counter()
    for detection in CATALOGUE:
        try:
            outcome.update(detection_run(detection, overrides=overrides, now=now))
        except Exception:
            # One broken rule must not silence the others.
            log.exception("detection %s failed", detection.rule)
            outcome["failed"] += 1
    outcome["resolved"] += alerts_auto_resolve(now=now)
    outcome["notifications"] += notifications_plan(now=now)
    return dict(outcome)


# After-drain evaluations run at most this often, whatever the drain's pace (every 2 s,
# several batches per run under load); beat's 30 s runs come on top.
AFTER_DRAIN_MIN_INTERVAL_SECONDS = 5
_AFTER_DRAIN_CLAIM = "keyward:alerts:after-drain"


def after_batch_drained(
    *, newest: datetime | None = None, now: datetime | None = None
) -> dict[str, int] | None:
    """After a committed batch of events (alerts.tasks.evaluate_after_drain, sent on
    analytics' `events_stored` signal: the drain sits below alerts and cannot import it).

    Skipped (None) for a batch whose newest event is older than RECENT_HORIZON (a backfill
    of old logs cannot fire anything) and when another evaluation started less than
    AFTER_DRAIN_MIN_INTERVAL_SECONDS ago: one claim in the shared cache.
    """
    now = now or timezone.now()
    if newest is not None and newest < now - RECENT_HORIZON:
        return None
    if not cache.add(_AFTER_DRAIN_CLAIM, 1, timeout=AFTER_DRAIN_MIN_INTERVAL_SECONDS):
        return None
    return detections_evaluate(now=now)


_AFTER_DRAIN_DEFERRED_CLAIM = "keyward:alerts:after-drain-deferred"


def after_drain_defer_claim(*, newest: datetime, now: datetime | None = None) -> bool:
    """A batch skipped because an evaluation ran moments ago may hold events that run did
    not see: True (once per interval) when the caller should evaluate again at the end of
    the interval, so such events wait seconds, not for beat's next run."""
    now = now or timezone.now()
    if newest < now - RECENT_HORIZON:
        return False
    return cache.add(_AFTER_DRAIN_DEFERRED_CLAIM, 1, timeout=AFTER_DRAIN_MIN_INTERVAL_SECONDS)


def detection_run(detection: Detection, *, overrides: dict, now: datetime) -> Counter[str]:
    """One rule's findings at `now`, raised as alerts; counts of each alert change. The
    quality benchmark (bench/alerts_quality.py) replays history through it rule by rule."""
    environments = [ENVIRONMENT_ANY, *Client.Environment.values]
    configs = {env: config_for(detection, env, overrides) for env in environments}
    outcome: Counter[str] = Counter()
    for window_seconds in sorted({c.window_seconds for c in configs.values() if c.enabled}):
        same_window = [
            c for c in configs.values() if c.enabled and c.window_seconds == window_seconds
        ]
        probe = Config(
            enabled=True,
            threshold=min(c.threshold for c in same_window),
            window_seconds=window_seconds,
            minimum=min(c.minimum for c in same_window),
            severity=detection.severity,
        )
        findings = detection.evaluate(probe, now)
        clients = environments_of(f.subject.client_id for f in findings)
        for finding in findings:
            client = clients.get(finding.subject.client_id)
            config = configs[client.environment if client else ENVIRONMENT_ANY]
            if not _fires(config, finding, window_seconds):
                continue
            raised = alert_raise(
                rule=detection.rule,
                subject=finding.subject,
                evidence=_evidence(detection, config, finding),
                seen_at=finding.last_seen_at,
                first_seen_at=finding.first_seen_at,
                severity=config.severity,
                client=client,
                now=now,
            )
            outcome[raised.change] += 1
    return outcome


def _fires(config: Config, finding: Finding, window_seconds: int) -> bool:
    return (
        config.enabled
        and config.window_seconds == window_seconds
        and finding.observed >= config.threshold
        and finding.events >= config.minimum
    )


def _evidence(detection: Detection, config: Config, finding: Finding) -> dict:
    from analytics.models import TokenEvent

    samples = (
        TokenEvent.objects.filter(finding.sample_filter)
        .order_by("-occurred_at")
        .values_list("id", flat=True)[:SAMPLE_EVENTS]
    )
    return finding.evidence | {
        "observed": finding.observed,
        "events": finding.events,
        "threshold": config.threshold,
        "minimum": config.minimum,
        "window_seconds": config.window_seconds,
        "window": window_words(config.window_seconds),
        "first_event_at": finding.first_seen_at.isoformat(),
        "last_event_at": finding.last_seen_at.isoformat(),
        "sample_event_ids": [str(pk) for pk in samples],
    }
