"""The investigation page's chart: the subject's traffic around the alert, read from the
rollups (analytics.selectors) like every other chart, drawn by static/charts.js.

1. A client subject: its requests and failures per step (the per-minute rollup). For the
   rules that count requests of some reasons per window (Detection.counts), those
   requests too, and, when the step is the rule's window, the threshold as a line: each
   bar is then what the rule compares with it (in fixed buckets, where the rule slides
   its window, so a burst split by a bucket edge shows lower than it counted).
2. A network subject (no client): its /24 (/48) failures per hour, the one rollup keyed
   by network (NetworkFailureHour); successes are not rolled up by network.
Always from an hour before the first event to an hour after the latest (or now), with a
marker at the first event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from analytics.charts import NICE_STEPS, explorer_url, iso, step_label
from analytics.rollups import network_of
from analytics.selectors import (
    HOUR,
    MINUTE,
    SeriesPoint,
    network_failure_series,
    traffic_series,
)

from .detections import DETECTIONS, RECENT_HORIZON
from .models import Alert

MARGIN = timedelta(hours=1)
# The server-rendered table (before the browser says how wide the chart is).
DEFAULT_POINTS = 40


@dataclass(frozen=True)
class AlertChart:
    start: datetime
    end: datetime
    step: timedelta
    points: list[SeriesPoint]
    counted: list[int] | None  # requests of the rule's reasons per step
    counted_label: str
    threshold: int | None  # drawn only when a step is the rule's window
    first_seen: datetime
    subject: dict  # the explorer's filters for the subject
    counted_filter: dict  # and for the counted requests
    network: str  # the rollup's network, for a network subject

    @property
    def step_text(self) -> str:
        return step_label(self.step)

    @property
    def by_network(self) -> bool:
        return bool(self.network)


@dataclass(frozen=True)
class ChartRow:
    """One bucket as the accessible table shows it, each count a link to its events."""

    start: datetime
    end: datetime
    requests: int
    failures: int
    counted: int | None
    url: str
    failures_url: str
    counted_url: str


def alert_chart(alert: Alert, *, points: int, now: datetime | None = None) -> AlertChart:
    now = now or timezone.now()
    detection = DETECTIONS.get(alert.rule)
    reasons = list(detection.counts) if detection else []
    start = alert.first_seen_at - MARGIN
    end = max(min(alert.last_seen_at + MARGIN, now), alert.last_seen_at + MINUTE)
    if not alert.subject_client_id and alert.source_network:
        return _network_chart(alert, start=start, end=end, points=points)
    # A rule no longer in the catalogue (renamed, removed) still has its traffic.
    seconds = alert.evidence.get("window_seconds") or (
        detection.window_seconds if detection else 60
    )
    window = min(timedelta(seconds=seconds), RECENT_HORIZON)
    step = _step(start, end, points=points, preferred=window if reasons else MINUTE, unit=MINUTE)
    start, end = _aligned(start, end, step)
    client_id = alert.subject_client_id
    series = traffic_series(start=start, end=end, step=step, client_id=client_id)
    counted = None
    if reasons:
        counted = [
            p.failures + p.successes
            for p in traffic_series(
                start=start, end=end, step=step, client_id=client_id, reasons=reasons
            )
        ]
    threshold = alert.evidence.get("threshold", detection.threshold) if reasons else None
    return AlertChart(
        start=start,
        end=end,
        step=step,
        points=series,
        counted=counted,
        counted_label=_counted_label(reasons),
        threshold=threshold if reasons and step == window else None,
        first_seen=alert.first_seen_at,
        subject={"client_id": client_id},
        counted_filter={"reason": reasons[0]} if len(reasons) == 1 else {"outcome": "failure"},
        network="",
    )


def _network_chart(alert: Alert, *, start: datetime, end: datetime, points: int) -> AlertChart:
    network = network_of(alert.source_network.split("/")[0])
    step = _step(start, end, points=points, preferred=HOUR, unit=HOUR)
    start, end = _aligned(start, end, step)
    return AlertChart(
        start=start,
        end=end,
        step=step,
        points=network_failure_series(network=network, start=start, end=end, step=step),
        counted=None,
        counted_label="",
        threshold=None,
        first_seen=alert.first_seen_at,
        subject={"ip": network},
        counted_filter={},
        network=network,
    )


def _counted_label(reasons: list[str]) -> str:
    from analytics.models import TokenEvent

    labels = [TokenEvent.Reason(r).label for r in reasons]
    return " or ".join(labels)


def _step(
    start: datetime, end: datetime, *, points: int, preferred: timedelta, unit: timedelta
) -> timedelta:
    """`preferred` if at most `points` steps of it cover the span, else the smallest round
    step that does."""
    candidates = [preferred, *(MINUTE * m for m in NICE_STEPS if MINUTE * m > preferred)]
    for step in candidates:
        if math.ceil((end - start) / step) + 1 <= points:
            return max(step, unit)
    return max(candidates[-1], unit)


def _aligned(start: datetime, end: datetime, step: timedelta) -> tuple[datetime, datetime]:
    """Start and end on multiples of the step (epoch), end past the last moment."""
    seconds = step.total_seconds()
    first = math.floor(start.timestamp() / seconds) * seconds
    last = math.ceil(end.timestamp() / seconds) * seconds
    return datetime.fromtimestamp(first, tz=UTC), datetime.fromtimestamp(last, tz=UTC)


def chart_rows(chart: AlertChart) -> list[ChartRow]:
    rows = []
    for i, point in enumerate(chart.points):
        end = point.bucket + chart.step
        bucket = chart.subject | {"from": iso(point.bucket), "to": iso(end)}
        rows.append(
            ChartRow(
                start=point.bucket,
                end=end,
                requests=point.successes + point.failures,
                failures=point.failures,
                counted=None if chart.counted is None else chart.counted[i],
                url=explorer_url(**bucket),
                failures_url=explorer_url(**bucket, outcome="failure"),
                counted_url=explorer_url(**bucket, **chart.counted_filter),
            )
        )
    return rows


def chart_json(chart: AlertChart) -> dict:
    """What static/charts.js draws: the traffic chart's shape (x, series, explore), with
    the series a network subject lacks left out, and the threshold and marker."""
    data = {
        "step_seconds": int(chart.step.total_seconds()),
        "unit": f"requests per {chart.step_text}",
        "x": [int(p.bucket.timestamp()) for p in chart.points],
        "failures": [p.failures for p in chart.points],
        "explore": explorer_url(**chart.subject),
        "marker": {"x": int(chart.first_seen.timestamp()), "label": "First event"},
        "threshold": None,
    }
    if not chart.by_network:
        data["requests"] = [p.successes + p.failures for p in chart.points]
    if chart.counted is not None:
        data["counted"] = chart.counted
        data["counted_label"] = chart.counted_label
        data["counted_filter"] = chart.counted_filter
    if chart.threshold is not None:
        data["threshold"] = {
            "value": chart.threshold,
            "label": f"Threshold: {chart.threshold} per {chart.step_text}",
        }
    return data
