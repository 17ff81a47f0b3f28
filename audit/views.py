"""The audit trail pages: a filtered, paginated list and a CSV export. Read-only by design."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from base.export import csv_lines
from base.http import wants_fragment
from base.roles import Role, role_required

from .forms import AuditFilterForm
from .models import AdminAction

PAGE_SIZE = 50
CSV_COLUMNS = (
    "time",
    "actor",
    "action",
    "target type",
    "target id",
    "target label",
    "before",
    "after",
    "ip",
    "user agent",
)


@dataclass(frozen=True)
class Change:
    """One field of an audit entry: `kind` is "changed", "added" or "removed"."""

    field: str
    kind: str
    before: str = ""
    after: str = ""


def _display(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_display(item) for item in value) if value else "(none)"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def entry_changes(entry: AdminAction) -> list[Change]:
    """before/after as a field-by-field diff; fields equal on both sides are left out."""
    before, after = entry.before or {}, entry.after or {}
    changes = []
    for field in list(dict.fromkeys([*before, *after])):
        if field in before and field in after:
            if before[field] != after[field]:
                old, new = _display(before[field]), _display(after[field])
                changes.append(Change(field, "changed", old, new))
        elif field in after:
            changes.append(Change(field, "added", after=_display(after[field])))
        else:
            changes.append(Change(field, "removed", before=_display(before[field])))
    return changes


@require_GET
@role_required(Role.VIEWER)
@vary_on_headers("HX-Request")  # one URL, a page or a fragment: caches keep them apart
def audit_list(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET)
    entries = form.apply(AdminAction.objects.all())
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    for entry in page.object_list:
        entry.changes = entry_changes(entry)
    context = {"form": form, "page": page, "filtered": form.is_filtered()}
    template = "audit/list.html"
    if wants_fragment(request):
        template += "#audit-table"
    return render(request, template, context)


def _json_cell(value: Any) -> str:
    return "" if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False)


def _csv_rows(entries: Iterable[AdminAction]) -> Iterator[list[str]]:
    yield list(CSV_COLUMNS)
    for entry in entries:
        row = [
            entry.created_at.isoformat(),
            entry.actor_label,
            entry.action,
            entry.target_type,
            entry.target_id,
            entry.target_label,
            _json_cell(entry.before),
            _json_cell(entry.after),
            entry.ip or "",
            entry.user_agent,
        ]
        yield row


@require_GET
@role_required(Role.VIEWER)
def audit_export(request: HttpRequest) -> StreamingHttpResponse:
    form = AuditFilterForm(request.GET)
    entries = form.apply(AdminAction.objects.all()).iterator(chunk_size=2000)
    filename = f"keyward-audit-{timezone.now():%Y%m%d-%H%M%S}.csv"
    return StreamingHttpResponse(
        csv_lines(_csv_rows(entries)),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
