"""Analytics pages: the events explorer, its live tail and its exports. Read-only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from base.export import csv_lines
from base.http import wants_fragment
from base.roles import Role, role_required

from .explorer import (
    EXPORT_FIELDS,
    TAIL_CAP,
    Cursor,
    event_as_dict,
    event_reason_label,
    events_filter,
    events_iterate,
    events_newer,
    events_page,
    known_client_ids,
)
from .forms import KNOWN_SOURCES, RANGE_PRESETS, EventFilterForm
from .models import TokenEvent

# The live tail's answer carries the newest row's cursor here, for the next poll.
NEWEST_HEADER = "X-Explorer-Newest"


def _rows(events: list) -> list[dict]:
    """What a table row shows about each event, with the client page linked where the
    client_id names a registered client."""
    registered = known_client_ids({event.client_id for event in events if event.client_id})
    return [
        {
            "event": event,
            "cursor": Cursor.of(event).encode(),
            # ISO 8601 in UTC; formatted here, not by the template's date filter, which
            # costs a few ms per page of 50 rows (measured).
            "time_iso": event.occurred_at.astimezone(UTC).isoformat(),
            "time_text": f"{event.occurred_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}",
            "reason_label": event_reason_label(event.reason),
            "client_linked": event.client_id in registered,
        }
        for event in events
    ]


def _form_context(form: EventFilterForm) -> dict:
    """What the filter form needs around it: presets and the suggestions of its fields."""
    return {
        "form": form,
        "presets": [(key, label) for key, (label, _) in RANGE_PRESETS.items()],
        "reason_choices": TokenEvent.Reason.choices,
        "known_sources": KNOWN_SOURCES,
    }


def query_without_empty(query: str) -> str:
    """`query` without its empty parameters (`client_id=&`), the others kept as written and
    in their order. A plain GET form sends every field, filled or not."""
    return "&".join(part for part in query.split("&") if part.partition("=")[2])


@require_GET
@role_required(Role.VIEWER)
@vary_on_headers("HX-Request")  # one URL, a page or a fragment: caches keep them apart
def event_list(request: HttpRequest) -> HttpResponse:
    # The explorer's URL is meant to be shared: redirect to it without empty filters. htmx
    # follows the redirect and pushes the URL it ended at.
    query = request.META.get("QUERY_STRING", "")
    if (clean := query_without_empty(query)) != query:
        return redirect(f"{request.path}?{clean}" if clean else request.path)
    form = EventFilterForm(request.GET)
    template = "analytics/explorer.html"
    if wants_fragment(request):
        template += "#explorer-results"
    if not form.is_valid():
        return render(request, template, _form_context(form) | {"invalid": True}, status=400)
    data = form.cleaned_data
    tail = data["tail"] and not data["before"]
    page = events_page(
        events_filter(form.filters()),
        before=data["before"],
        after=None if tail else data["after"],
    )
    context = _form_context(form) | {
        "page": page,
        "rows": _rows(page.events),
        "filtered": form.is_filtered(),
        "has_time_bound": bool(data.get("range") or data.get("from") or data.get("to")),
        "tail": tail,
        "tail_cap": TAIL_CAP,
    }
    return render(request, template, context)


@require_GET
@role_required(Role.VIEWER)
def event_tail(request: HttpRequest) -> HttpResponse:
    """Rows newer than `after`, newest first, as table rows for the live tail to prepend."""
    form = EventFilterForm(request.GET)
    if not form.is_valid():
        return HttpResponse(status=400)
    events, skipped = events_newer(events_filter(form.filters()), after=form.cleaned_data["after"])
    context = {"rows": _rows(events), "skipped": skipped}
    response = render(request, "analytics/explorer.html#event-rows", context)
    newest = Cursor.of(events[0]).encode() if events else request.GET.get("after", "")
    response[NEWEST_HEADER] = newest
    response["Cache-Control"] = "no-store"
    return response


def _export_name(extension: str) -> str:
    return f"keyward-events-{timezone.now():%Y%m%d-%H%M%S}.{extension}"


def _export_form(request: HttpRequest) -> EventFilterForm | HttpResponse:
    form = EventFilterForm(request.GET)
    if form.is_valid():
        return form
    errors = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in form.errors.items())
    return HttpResponse(errors, status=400, content_type="text/plain; charset=utf-8")


def _csv_cell(value) -> object:
    # Booleans as in the NDJSON export, not Python's True/False.
    return ("true" if value else "false") if isinstance(value, bool) else value


def _csv_rows(events: Iterator) -> Iterator[list]:
    yield list(EXPORT_FIELDS)
    for event in events:
        yield [_csv_cell(value) for value in event_as_dict(event).values()]


@require_GET
@role_required(Role.VIEWER)
def event_export_csv(request: HttpRequest) -> HttpResponse:
    form = _export_form(request)
    if isinstance(form, HttpResponse):
        return form
    events = events_iterate(events_filter(form.filters()))
    return StreamingHttpResponse(
        csv_lines(_csv_rows(events)),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_export_name("csv")}"'},
    )


def _ndjson_lines(events: Iterator) -> Iterator[str]:
    for event in events:
        yield json.dumps(event_as_dict(event), ensure_ascii=False) + "\n"


@require_GET
@role_required(Role.VIEWER)
def event_export_ndjson(request: HttpRequest) -> HttpResponse:
    form = _export_form(request)
    if isinstance(form, HttpResponse):
        return form
    events = events_iterate(events_filter(form.filters()))
    return StreamingHttpResponse(
        _ndjson_lines(events),
        content_type="application/x-ndjson; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_export_name("ndjson")}"'},
    )
