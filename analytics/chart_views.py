"""Chart data (JSON) and a client's activity block (an htmx fragment for the client page).

The client page belongs to the clients app, which sits below analytics in the layers and
may not import it; so the page asks this view for its activity block with hx-get.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from base.http import wants_fragment
from base.roles import Role, role_required
from clients.models import Client

from .activity import client_activity as client_activity_read
from .activity import overview_series
from .charts import (
    CLIENT_ID_MAX_LENGTH,
    ChartParamError,
    range_links,
    range_parse,
    series_json,
    series_read,
    source_parse,
    width_parse,
    window_for,
)

NO_STORE = {"Cache-Control": "no-store"}
# A client's page looks back a week by default: most clients call a few times a day.
CLIENT_RANGE = "7d"


def _bad_request(error: ChartParamError) -> JsonResponse:
    return JsonResponse({"error": "invalid_request", "detail": str(error)}, status=400)


@require_GET
@role_required(Role.VIEWER)
def traffic_json(request: HttpRequest) -> JsonResponse:
    """Requests and failures over a preset range, at most one point per pixel of `width`.

    GET /analytics/charts/traffic.json?range=24h&width=800[&client_id=…][&source=…]
    """
    try:
        range_key = range_parse(request.GET.get("range"))
        points = width_parse(request.GET.get("width"))
        source = source_parse(request.GET.get("source"))
        client_id = request.GET.get("client_id") or None
        if client_id is not None and len(client_id) > CLIENT_ID_MAX_LENGTH:
            raise ChartParamError("client_id is too long")
    except ChartParamError as error:
        return _bad_request(error)
    window = window_for(range_key, points=points)
    if client_id is None:
        series = overview_series(window, source=source)
    else:
        series = series_read(window, client_id=client_id, source=source)
    return JsonResponse(series_json(series, client_id=client_id, source=source), headers=NO_STORE)


@require_GET
@role_required(Role.VIEWER)
def client_activity(request: HttpRequest, client_id: str) -> HttpResponse:
    """The activity block of a client's page: as a fragment for htmx, else as a page of its
    own (the client page's link works without JavaScript)."""
    client = get_object_or_404(Client, client_id=client_id)
    try:
        range_key = range_parse(request.GET.get("range"), default=CLIENT_RANGE)
    except ChartParamError as error:
        return HttpResponse(str(error), status=400, content_type="text/plain")
    path = reverse("analytics:client_activity", args=[client.client_id])
    context = {
        "activity": client_activity_read(client=client, range_key=range_key),
        "client": client,
        "range_links": range_links(current=range_key, path=path),
    }
    template = "analytics/client_activity.html"
    if wants_fragment(request):
        template += "#activity"
    return render(request, template, context)
