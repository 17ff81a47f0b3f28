"""Chart data for the overview and client pages: a time range, downsampled on the server.

The browser says how wide the chart is; the series gets at most about one point per pixel
(capped at MAX_POINTS), each point the sum of the rollup buckets it covers. Ranges up to
48 h read the per-minute rollup, longer ones the per-hour rollup (selectors.MINUTE_RANGE),
so a 30-day chart sums at most 720 hourly buckets per key whatever the number of events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.urls import reverse
from django.utils import timezone

from .selectors import HOUR, MINUTE, MINUTE_RANGE, SeriesPoint, traffic_series

# Preset ranges: query-string value → (label, length). Same values as the explorer's.
RANGES = {
    "1h": ("Last hour", timedelta(hours=1)),
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
}
DEFAULT_RANGE = "24h"
# How the range switch names them.
RANGE_SHORT = {"1h": "1 h", "24h": "24 h", "7d": "7 d", "30d": "30 d"}
# Wider than any screen's chart; a client asking for more gets this many.
MAX_POINTS = 1500
MIN_POINTS = 2
# The server-rendered table under each chart (before the browser measures it): about 24
# rows, one per hour over a day.
DEFAULT_POINTS = 25
# Steps a chart may use, in minutes: round numbers, so buckets read as "5 min", "6 h".
NICE_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080)
# Offered in the source filter; any other name seen in the data is accepted too.
KNOWN_SOURCES = ("keyward", "keycloak", "auth0", "okta")
SOURCE_MAX_LENGTH = 40
CLIENT_ID_MAX_LENGTH = 200


class ChartParamError(ValueError):
    """A query parameter the chart endpoints cannot use; the message says which and why."""


@dataclass(frozen=True)
class Window:
    key: str
    label: str
    start: datetime
    end: datetime
    step: timedelta

    @property
    def unit(self) -> timedelta:
        return MINUTE if self.step < HOUR else HOUR

    @property
    def step_text(self) -> str:
        return step_label(self.step)


@dataclass(frozen=True)
class Series:
    window: Window
    points: list[SeriesPoint]

    @property
    def requests(self) -> int:
        return sum(p.successes + p.failures for p in self.points)

    @property
    def failures(self) -> int:
        return sum(p.failures for p in self.points)


def range_parse(value: str | None, default: str = DEFAULT_RANGE) -> str:
    if not value:
        return default
    if value not in RANGES:
        raise ChartParamError(f"range must be one of {', '.join(RANGES)}")
    return value


def width_parse(value: str | None) -> int:
    if not value:
        return DEFAULT_POINTS
    if not value.isdigit() or len(value) > 6:
        raise ChartParamError("width must be a whole number of pixels")
    return max(MIN_POINTS, min(int(value), MAX_POINTS))


def source_parse(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if len(value) > SOURCE_MAX_LENGTH or not value.replace("-", "").replace("_", "").isalnum():
        raise ChartParamError("source must be a short name such as keyward or okta")
    return value


def _floor(moment: datetime, step: timedelta) -> datetime:
    seconds = step.total_seconds()
    return datetime.fromtimestamp(moment.timestamp() // seconds * seconds, tz=UTC)


def window_for(key: str, *, points: int, now: datetime | None = None) -> Window:
    """The range `key` ending with the current unit, in steps of whole units such that at
    most `points` steps cover it. Steps are aligned to multiples of themselves (epoch), so
    a refresh a minute later keeps the same buckets and only adds at the end."""
    label, span = RANGES[key]
    unit = MINUTE if span <= MINUTE_RANGE else HOUR
    now = now or timezone.now()
    end = _floor(now, unit) + unit
    for step in _steps(unit, span):
        start = _floor(end - span, step)
        if math.ceil((end - start) / step) <= points:
            break
    return Window(key=key, label=label, start=start, end=end, step=step)


def _steps(unit: timedelta, span: timedelta):
    """Candidate steps, smallest first: the round ones, then whole multiples of the unit
    (a span is at most 30 days, so this ends well before the span itself)."""
    yield from (MINUTE * m for m in NICE_STEPS if MINUTE * m >= unit)
    yield from (unit * n for n in range(2, int(span / unit) + 2))


def series_read(
    window: Window, *, client_id: str | None = None, source: str | None = None
) -> Series:
    points = traffic_series(
        start=window.start, end=window.end, step=window.step, client_id=client_id, source=source
    )
    return Series(window=window, points=points)


def step_label(step: timedelta) -> str:
    minutes = int(step.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes % (24 * 60) == 0:
        days = minutes // (24 * 60)
        return "day" if days == 1 else f"{days} days"
    hours = minutes // 60
    return "hour" if hours == 1 else f"{hours} h"


def explorer_url(**filters) -> str:
    """The events explorer filtered to `filters` (None and empty values left out)."""
    base = reverse("analytics:events")
    wanted = {name: value for name, value in filters.items() if value not in (None, "")}
    return f"{base}?{urlencode(wanted)}" if wanted else base


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def window_filters(window: Window) -> dict:
    """The explorer's `from`/`to` for the whole window."""
    return {"from": iso(window.start), "to": iso(window.end)}


def series_json(series: Series, *, client_id: str | None, source: str | None) -> dict:
    """What static/charts.js draws: uPlot's columns (x in epoch seconds, then one array per
    series) and what a click needs to open the explorer on a bucket."""
    window = series.window
    return {
        "range": window.key,
        "label": window.label,
        "step_seconds": int(window.step.total_seconds()),
        "unit": f"requests per {step_label(window.step)}",
        "x": [int(p.bucket.timestamp()) for p in series.points],
        "requests": [p.successes + p.failures for p in series.points],
        "failures": [p.failures for p in series.points],
        "totals": {"requests": series.requests, "failures": series.failures},
        "explore": explorer_url(client_id=client_id, source=source),
    }


@dataclass(frozen=True)
class TableRow:
    """One bucket of a chart as its accessible table shows it, with explorer links."""

    start: datetime
    end: datetime
    requests: int
    failures: int
    url: str
    failures_url: str


def table_rows(series: Series, *, client_id: str | None, source: str | None) -> list[TableRow]:
    rows = []
    for point in series.points:
        end = point.bucket + series.window.step
        bucket = {
            "client_id": client_id,
            "source": source,
            "from": iso(point.bucket),
            "to": iso(end),
        }
        rows.append(
            TableRow(
                start=point.bucket,
                end=end,
                requests=point.successes + point.failures,
                failures=point.failures,
                url=explorer_url(**bucket),
                failures_url=explorer_url(**bucket, outcome="failure"),
            )
        )
    return rows


def chart_url(*, range_key: str, client_id: str | None = None, source: str | None = None) -> str:
    wanted = {"range": range_key, "client_id": client_id, "source": source}
    query = urlencode({k: v for k, v in wanted.items() if v})
    return f"{reverse('analytics:traffic_json')}?{query}"


@dataclass(frozen=True)
class Link:
    label: str
    url: str
    current: bool


def range_links(*, current: str, path: str, **params) -> list[Link]:
    """The range switch: one link per preset range, other parameters kept."""
    kept = {k: v for k, v in params.items() if v}
    return [
        Link(RANGE_SHORT[key], f"{path}?{urlencode({'range': key} | kept)}", key == current)
        for key in RANGES
    ]


def source_links(
    *, current: str | None, choices: list[str], path: str, range_key: str
) -> list[Link]:
    """The source filter: every source, then each one offered."""
    links = [Link("All sources", f"{path}?{urlencode({'range': range_key})}", current is None)]
    for source in choices:
        url = f"{path}?{urlencode({'range': range_key, 'source': source})}"
        links.append(Link(source, url, source == current))
    return links
