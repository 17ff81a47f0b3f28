"""Usage reports: resource servers say which clients' scopes they checked.

The resource-server kit (tokens/resource.py, `UsageReporter`) counts, per hour, client and
scope, the requests its protected views let through, and posts the counts in batches to
`POST /analytics/api/usage` (analytics/ingestion_views.py), authenticated by an ingestion
token. One report is one JSON object:

    {"batch_id": "<uuid>", "resource": "orders-api",
     "entries": [{"client_id": "…", "scope": "orders:read", "hour": 1764777600, "count": 12}]}

`hour` is the start of the hour, Unix seconds; `resource` (optional, the token's source by
default) names the resource server. The counts go into ScopeExerciseHour (`via` report) in
one transaction with the batch id, whose primary key makes a batch sent twice count once.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.events import MAX_LENGTHS, client_id_redacted

from .formats import SOURCE_NAME_RE
from .ingestion_tokens import source_name_problem
from .models import SCOPE_MAX_LENGTH, IngestionToken, ScopeExerciseHour, UsageReport
from .rollups import exercise_rows, rows_write

MAX_ENTRIES = 10_000
MAX_COUNT = 10**9
# A batch id is remembered this long: a sender retrying a lost answer does so within
# minutes. Retention prunes older ids.
USAGE_REPORT_IDS_KEPT = timedelta(days=7)
# Hours this far ahead of now are refused (a sender's clock may run a little fast).
FUTURE_SLACK = timedelta(hours=1)
REPORT = ScopeExerciseHour.Via.REPORT.value


class ReportInvalid(ValueError):
    """The report cannot be stored; the message says what to fix."""


class ReportForbidden(ValueError):
    """The report names a resource it may not name."""


@dataclass(frozen=True)
class Report:
    batch_id: uuid.UUID
    resource: str
    # (hour epoch, client_id, scope) -> count
    counts: Counter

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def usage_report_parse(data: Any, *, default_resource: str) -> Report:
    """A decoded JSON body as a Report, or ReportInvalid / ReportForbidden. All or nothing:
    one bad entry refuses the whole batch, so a fixed batch can be sent again whole."""
    if not isinstance(data, dict):
        raise ReportInvalid("The body must be a JSON object.")
    try:
        batch_id = uuid.UUID(str(data.get("batch_id")))
    except ValueError:
        raise ReportInvalid("batch_id must be a UUID, new for each batch.") from None
    resource = data.get("resource") or default_resource
    if not isinstance(resource, str) or not SOURCE_NAME_RE.match(resource):
        raise ReportInvalid("resource: use lowercase letters, digits, '.', '_' or '-'.")
    problem = source_name_problem(resource)
    if problem:
        raise ReportForbidden(f"resource: {problem}")
    entries = data.get("entries")
    if not isinstance(entries, list) or not entries:
        raise ReportInvalid("entries must be a non-empty list.")
    if len(entries) > MAX_ENTRIES:
        raise ReportInvalid(f"At most {MAX_ENTRIES} entries per batch; send several.")
    counts: Counter = Counter()
    oldest, newest = _hour_range()
    for index, entry in enumerate(entries):
        try:
            key, count = _entry(entry, oldest, newest)
        except ReportInvalid as exc:
            raise ReportInvalid(f"entries[{index}]: {exc}") from None
        counts[key] += count
    return Report(batch_id=batch_id, resource=resource, counts=counts)


def _hour_range() -> tuple[float, float]:
    now = timezone.now()
    oldest = now - timedelta(days=settings.KEYWARD_ROLLUP_RETENTION_DAYS)
    return oldest.timestamp(), (now + FUTURE_SLACK).timestamp()


def _entry(entry: Any, oldest: float, newest: float) -> tuple[tuple, int]:
    if not isinstance(entry, dict):
        raise ReportInvalid("must be an object")
    client_id = _name(entry.get("client_id"), "client_id", MAX_LENGTHS["client_id"])
    scope = _name(entry.get("scope"), "scope", SCOPE_MAX_LENGTH)
    if " " in scope:
        raise ReportInvalid("scope: one scope per entry")
    hour, count = entry.get("hour"), entry.get("count")
    if isinstance(hour, bool) or not isinstance(hour, int) or hour % 3600:
        raise ReportInvalid("hour must be the start of an hour in Unix seconds")
    if not oldest - 3600 < hour <= newest:
        raise ReportInvalid("hour is outside the kept window or in the future")
    if isinstance(count, bool) or not isinstance(count, int) or not 0 < count <= MAX_COUNT:
        raise ReportInvalid(f"count must be an integer from 1 to {MAX_COUNT}")
    return (hour, client_id_redacted(client_id), scope), count


def _name(value: Any, field: str, limit: int) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ReportInvalid(f"{field} must be a string of 1 to {limit} characters")
    if not value.isprintable():
        raise ReportInvalid(f"{field} holds control characters")
    return value


def usage_report_store(*, report: Report, token: IngestionToken | None) -> bool:
    """Add the report's counts to ScopeExerciseHour; False (and nothing added) when this
    batch id was stored before."""
    with transaction.atomic():
        _batch, created = UsageReport.objects.get_or_create(
            batch_id=report.batch_id,
            defaults={
                "token": token,
                "reporter": report.resource,
                "entries": len(report.counts),
                "total": report.total,
            },
        )
        if not created:
            return False
        counts = Counter(
            {
                (hour, client_id, scope, REPORT, report.resource): n
                for (hour, client_id, scope), n in report.counts.items()
            }
        )
        rows_write({ScopeExerciseHour: exercise_rows(counts)})
    return True
