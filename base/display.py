"""How values look on console pages: one date-time format, durations, missing values.

Every page shows a moment the same way, ISO 8601 in UTC with the zone said
(`2026-12-03 08:45 UTC`), inside a `<time datetime>` element that the stylesheet keeps on
one line. The template filter `when` (dashboard/templatetags/console.py) and the audit
trail's change lists both call `datetime_html`, so there is one format to change.
"""

from __future__ import annotations

import datetime as dt
import re

from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.safestring import SafeString

EMPTY = "—"  # an em dash: the value is not set (None, "" or an empty list)
_ISO_DATETIME = re.compile(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d")


def as_datetime(value) -> dt.datetime | None:
    """A datetime, or an ISO 8601 date-time string as stored in JSON; otherwise None."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and _ISO_DATETIME.match(value):
        try:
            return parse_datetime(value)
        except ValueError:
            return None
    return None


def datetime_text(value: dt.datetime) -> str:
    """`2026-12-03 08:45 UTC` (naive values are taken as UTC, the project's zone)."""
    return f"{_utc(value):%Y-%m-%d %H:%M} UTC"


def datetime_html(value: dt.datetime) -> SafeString:
    """`<time datetime="2026-12-03T08:45:12Z">2026-12-03 08:45 UTC</time>`."""
    utc = _utc(value)
    machine = utc.isoformat(timespec="seconds").replace("+00:00", "Z")
    return format_html('<time datetime="{}">{}</time>', machine, datetime_text(utc))


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


_UNITS = ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second"))


def duration_text(seconds: int | float) -> str:
    """Seconds in the largest whole unit: 0 → "immediately", 86400 → "1 day", 90 → "90 seconds"."""
    seconds = int(seconds)
    if seconds == 0:
        return "immediately"
    for size, unit in _UNITS:
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} seconds"  # unreachable: every integer is a whole number of seconds
