"""Alert pages under /alerts/: the inbox, an alert's investigation page with its one-click
responses, suppressions, detection settings and notification destinations.

Reads come from alerts/selectors.py; every write goes through alerts/services.py, which
calls the owning app's service for responses and writes the audit row and the timeline
entry in the same transaction.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from analytics.charts import ChartParamError, width_parse
from audit.services import Actor
from base.http import wants_fragment
from base.once import form_once, once_put, once_take
from base.roles import Role, role_check, role_required
from clients.models import ClientSecret
from clients.selectors import client_valid_secrets
from clients.views import secret_handover
from security.forms import RotateForm

from . import selectors, services
from .charts import DEFAULT_POINTS, alert_chart, chart_json, chart_rows
from .detections import CATALOGUE, DETECTIONS, config_for, overrides_load
from .forms import (
    AlertFilterForm,
    AssignForm,
    BulkForm,
    CommentForm,
    DestinationForm,
    DetectionSettingForm,
    ResolveForm,
    SuppressForm,
    SuppressionForm,
)
from .models import ENVIRONMENT_CHOICES, Alert, AlertDestination, Suppression

ALERTS_PER_PAGE = 50
# Explorer links show the events around the alert: this much before and after.
EXPLORER_MARGIN_SECONDS = 300


def _alert(pk: int) -> Alert:
    return get_object_or_404(Alert.objects.select_related("client", "assignee", "previous"), pk=pk)


def _errors(exc: ValidationError) -> str:
    return " ".join(exc.messages)


# Inbox ------------------------------------------------------------------------------------


@require_GET
@role_required(Role.VIEWER)
@vary_on_headers("HX-Request")  # one URL, a page or a fragment: caches keep them apart
def inbox(request: HttpRequest) -> HttpResponse:
    filters = AlertFilterForm(request.GET)
    query = filters.query()
    assignee = query.get("assignee", "")
    if assignee == "me":
        assignee = request.user.get_username()
    alerts = selectors.alerts_filtered(
        severity=query.get("severity", ""),
        status=query.get("status", ""),
        rule=query.get("rule", ""),
        client_id=query.get("client", ""),
        environment=query.get("environment", ""),
        assignee=assignee,
        since=filters.since_time(),
    )
    page = Paginator(alerts, ALERTS_PER_PAGE).get_page(request.GET.get("page"))
    for alert in page.object_list:
        alert.detection = DETECTIONS.get(alert.rule)
    context = {
        "filters": filters,
        "page": page,
        "filter_query": urlencode(query),
        "is_filtered": bool(query),
        "close_reasons": [c for c in Alert.CloseReason.choices if c[0] != "automatic"],
        "open_count": selectors.alerts_open_count(),
    }
    template = "alerts/inbox.html#results" if wants_fragment(request) else "alerts/inbox.html"
    return render(request, template, context)


@require_GET
@role_required(Role.VIEWER)
def nav_count(request: HttpRequest) -> HttpResponse:
    """The navigation's open-alert badge, polled by htmx: the count only, swapped inside
    the link, so the link's aria-current (which page is open) survives the refresh."""
    return render(request, "alerts/_nav_count.html#count", {"count": selectors.alerts_open_count()})


@require_POST
@role_required(Role.OPERATOR)
def bulk(request: HttpRequest) -> HttpResponse:
    form = BulkForm(request.POST)
    back = reverse("alerts:inbox") + (
        "?" + request.POST["query"] if request.POST.get("query") else ""
    )
    if not form.is_valid():
        messages.error(request, "Tick the alerts first, and for resolving choose a reason.")
        return redirect(back)
    changed = services.alerts_bulk_update(
        actor=Actor.from_request(request),
        alerts=list(form.cleaned_data["alerts"]),
        action=form.cleaned_data["action"],
        close_reason=form.cleaned_data.get("close_reason", ""),
    )
    verb = "Acknowledged" if form.cleaned_data["action"] == "acknowledge" else "Resolved"
    messages.success(request, f"{verb} {changed} alert{'s' if changed != 1 else ''}.")
    return redirect(back)


# Investigation ----------------------------------------------------------------------------


def _explorer_url(alert: Alert) -> str:
    """The events explorer filtered to the alert's subject, a few minutes either side."""
    margin = timedelta(seconds=EXPLORER_MARGIN_SECONDS)
    params = {
        "from": (alert.first_seen_at - margin).isoformat(),
        "to": (alert.last_seen_at + margin).isoformat(),
    }
    if alert.subject_client_id:
        params["client_id"] = alert.subject_client_id
    if alert.source_network:
        params["ip"] = alert.source_network
    return reverse("analytics:events") + "?" + urlencode(params)


@require_GET
@role_required(Role.VIEWER)
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    alert = _alert(pk)
    detection = DETECTIONS.get(alert.rule)
    client = alert.client
    chart = alert_chart(alert, points=DEFAULT_POINTS)
    context = {
        "alert": alert,
        "detection": detection,
        "explanation": detection.explain(alert.evidence) if detection else "",
        "events": selectors.alert_sample_events(alert),
        "explorer_url": _explorer_url(alert),
        "timeline": alert.timeline.select_related("actor"),
        "client": client,
        "secrets": client_valid_secrets(client=client) if client else [],
        "resolve_form": ResolveForm(),
        "comment_form": CommentForm(),
        "assign_form": AssignForm(initial={"assignee": alert.assignee}),
        "suppress_form": SuppressForm(
            initial={"by": "client" if alert.subject_client_id else "network"}
        ),
        "rotate_form": RotateForm(),
        "network_blocked": bool(client and alert.source_network in client.denied_networks),
        "evidence_rows": _evidence_rows(alert.evidence),
        "chart": chart,
        "chart_rows": chart_rows(chart),
    }
    return render(request, "alerts/detail.html", context)


@require_GET
@role_required(Role.VIEWER)
def traffic_json(request: HttpRequest, pk: int) -> JsonResponse:
    """The investigation chart's data: GET /alerts/<pk>/traffic.json?width=800."""
    alert = _alert(pk)
    try:
        points = width_parse(request.GET.get("width"))
    except ChartParamError as error:
        return JsonResponse({"error": "invalid_request", "detail": str(error)}, status=400)
    chart = alert_chart(alert, points=points)
    return JsonResponse(chart_json(chart), headers={"Cache-Control": "no-store"})


HIDDEN_EVIDENCE = {"sample_event_ids", "first_event_at", "last_event_at", "window_seconds", "what"}
# Shown after the rule's own numbers, in this order (PostgreSQL's jsonb keeps no key order).
COMMON_EVIDENCE = ("observed", "threshold", "events", "minimum", "window")
EVIDENCE_LABELS = {
    "observed": "compared with the threshold",
    "events": "matching events",
    "minimum": "minimum events",
}


def _evidence_rows(evidence: dict) -> list[tuple[str, str]]:
    """The rule's own numbers first (alphabetically), then the common ones."""
    own = sorted(k for k in evidence if k not in HIDDEN_EVIDENCE and k not in COMMON_EVIDENCE)
    rows = []
    for key in [*own, *(k for k in COMMON_EVIDENCE if k in evidence)]:
        value = evidence[key]
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value) or "—"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items())
        rows.append((EVIDENCE_LABELS.get(key, key.replace("_", " ")), str(value)))
    return rows


def _back_to(alert: Alert) -> HttpResponse:
    return redirect("alerts:detail", pk=alert.pk)


@require_POST
@role_required(Role.OPERATOR)
def acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    alert = services.alert_acknowledge(actor=Actor.from_request(request), alert=_alert(pk))
    messages.success(request, f"Alert #{alert.pk} acknowledged.")
    return _back_to(alert)


@require_POST
@role_required(Role.OPERATOR)
def resolve(request: HttpRequest, pk: int) -> HttpResponse:
    alert = _alert(pk)
    form = ResolveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose why the alert is resolved.")
        return _back_to(alert)
    services.alert_resolve(actor=Actor.from_request(request), alert=alert, **form.cleaned_data)
    messages.success(request, f"Alert #{alert.pk} resolved.")
    return _back_to(alert)


@require_POST
@role_required(Role.OPERATOR)
def assign(request: HttpRequest, pk: int) -> HttpResponse:
    alert = _alert(pk)
    form = AssignForm(request.POST)
    if form.is_valid():
        services.alert_assign(
            actor=Actor.from_request(request), alert=alert, assignee=form.cleaned_data["assignee"]
        )
    else:
        messages.error(request, "Unknown user.")
    return _back_to(alert)


@require_POST
@role_required(Role.OPERATOR)
def comment(request: HttpRequest, pk: int) -> HttpResponse:
    alert = _alert(pk)
    form = CommentForm(request.POST)
    if form.is_valid():
        services.alert_comment(
            actor=Actor.from_request(request), alert=alert, text=form.cleaned_data["text"]
        )
    else:
        messages.error(request, "Write a comment first (at most 4000 characters).")
    return _back_to(alert)


# Responses --------------------------------------------------------------------------------


def _respond(request: HttpRequest, alert: Alert, action, success: str, **kwargs) -> HttpResponse:
    try:
        action(actor=Actor.from_request(request), alert=alert, **kwargs)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    else:
        messages.success(request, success)
    return _back_to(alert)


@require_POST
@role_required(Role.OPERATOR)
def respond_disable(request: HttpRequest, pk: int) -> HttpResponse:
    alert = _alert(pk)
    return _respond(
        request,
        alert,
        services.alert_respond_disable_client,
        "Client disabled: the token service refuses it within a second.",
    )


@require_POST
@role_required(Role.OPERATOR)
def respond_revoke(request: HttpRequest, pk: int, secret_id: int) -> HttpResponse:
    alert = _alert(pk)
    secret = get_object_or_404(ClientSecret, pk=secret_id, client_id=alert.client_id)
    return _respond(
        request,
        alert,
        services.alert_respond_revoke_secret,
        f"Secret {secret.hint} revoked.",
        secret=secret,
    )


@require_POST
@role_required(Role.OPERATOR)
def respond_block(request: HttpRequest, pk: int) -> HttpResponse:
    alert = _alert(pk)
    return _respond(
        request,
        alert,
        services.alert_respond_block_network,
        f"{alert.source_network} is blocked for this client.",
    )


@require_POST
@role_required(Role.OPERATOR)
@form_once
def respond_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    alert = _alert(pk)
    form = RotateForm(request.POST)
    if not form.is_valid():
        problems = [message for errors in form.errors.values() for message in errors]
        messages.error(request, " ".join(problems))
        return _back_to(alert)
    try:
        secret, plain = services.alert_respond_rotate_secret(
            actor=Actor.from_request(request), alert=alert, grace=form.cleaned_data["grace"]
        )
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return _back_to(alert)
    return secret_handover(request, secret=secret, plain=plain)


@require_POST
@role_required(Role.OPERATOR)
def suppress(request: HttpRequest, pk: int) -> HttpResponse:
    alert = _alert(pk)
    form = SuppressForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a reason and a duration for the suppression.")
        return _back_to(alert)
    return _respond(
        request,
        alert,
        services.alert_suppress,
        "Suppressed.",
        by=form.cleaned_data["by"],
        duration=form.expiry_delta(),
        reason=form.cleaned_data["reason"],
    )


# Suppressions -----------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@role_required(Role.VIEWER)
def suppressions(request: HttpRequest) -> HttpResponse:
    form = SuppressionForm(request.POST or None)
    status = 200
    if request.method == "POST":
        role_check(request, Role.OPERATOR)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.suppression_create(
                    actor=Actor.from_request(request),
                    rule=data["rule"],
                    client_id=data["client_id"].strip(),
                    network=data["network"].strip(),
                    reason=data["reason"],
                    expires_at=form.expires_at(),
                )
            except (ValidationError, ValueError) as exc:
                msg = _errors(exc) if isinstance(exc, ValidationError) else str(exc)
                form.add_error(None, msg)
            else:
                messages.success(request, "Suppression added.")
                return redirect("alerts:suppressions")
        status = 400
    context = {"form": form, "suppressions": selectors.suppressions_listed()}
    return render(request, "alerts/suppressions.html", context, status=status)


@require_POST
@role_required(Role.OPERATOR)
def suppression_lift(request: HttpRequest, pk: int) -> HttpResponse:
    suppression = get_object_or_404(Suppression, pk=pk)
    services.suppression_lift(actor=Actor.from_request(request), suppression=suppression)
    messages.success(request, "Suppression lifted.")
    return redirect("alerts:suppressions")


# Detection settings -----------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@role_required(Role.VIEWER)
def detection_settings(request: HttpRequest) -> HttpResponse:
    """Everyone with a role reads the rules and their effective settings; admins edit."""
    status = 200
    form = None
    if request.method == "POST":
        role_check(request, Role.ADMIN)
        form = DetectionSettingForm(request.POST)
        if form.is_valid():
            data = dict(form.cleaned_data)
            rule, environment = data.pop("rule"), data.pop("environment") or ""
            try:
                services.detection_setting_update(
                    actor=Actor.from_request(request), rule=rule, environment=environment, **data
                )
            except ValidationError as exc:
                form.add_error(None, _errors(exc))
            else:
                messages.success(
                    request,
                    f"Saved {DETECTIONS[rule].title} ({environment or 'all environments'}).",
                )
                return redirect(reverse("alerts:settings") + f"#rule-{rule}")
        status = 400
    overrides = overrides_load()
    rows = []
    for detection in CATALOGUE:
        configs = [
            (env, label, config_for(detection, env, overrides), (detection.rule, env) in overrides)
            for env, label in ENVIRONMENT_CHOICES
        ]
        rows.append((detection, configs))
    context = {"rows": rows, "form": form}
    return render(request, "alerts/settings.html", context, status=status)


# Destinations -----------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
@form_once
def destinations(request: HttpRequest) -> HttpResponse:
    form = DestinationForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                destination, plain = services.destination_create(
                    actor=Actor.from_request(request), **form.cleaned_data
                )
            except ValidationError as exc:
                form.add_error(None, _errors(exc))
            else:
                if plain:
                    return _secret_handover(request, destination, plain)
                messages.success(request, f"Added {destination.name}.")
                return redirect("alerts:destinations")
        status = 400
    context = {
        "form": form,
        "destinations": AlertDestination.objects.all(),
        "throttle_minutes": settings.KEYWARD_ALERT_THROTTLE_SECONDS // 60,
    }
    return render(request, "alerts/destinations.html", context, status=status)


def _secret_once_name(destination_pk: int) -> str:
    return f"webhook-secret:{destination_pk}"


def _secret_handover(request: HttpRequest, destination: AlertDestination, plain: str):
    """Redirect to the page that shows the webhook's signing secret once (base/once.py)."""
    once_put(request, _secret_once_name(destination.pk), {"plain": plain})
    return redirect("alerts:destination_secret", pk=destination.pk)


@require_GET
@role_required(Role.ADMIN)
def destination_secret(request: HttpRequest, pk: int) -> HttpResponse:
    """The signing secret, once; a reload says it was shown and how to get another."""
    destination = get_object_or_404(AlertDestination, pk=pk)
    shown = once_take(request, _secret_once_name(destination.pk)) or {}
    context = {"destination": destination, "plain": shown.get("plain")}
    response = render(request, "alerts/destination_secret.html", context)
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@role_required(Role.ADMIN)
def destination_detail(request: HttpRequest, pk: int) -> HttpResponse:
    destination = get_object_or_404(AlertDestination, pk=pk)
    context = {
        "destination": destination,
        "deliveries": selectors.destination_deliveries(destination),
    }
    return render(request, "alerts/destination_detail.html", context)


@require_POST
@role_required(Role.ADMIN)
@form_once
def destination_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    destination = get_object_or_404(AlertDestination, pk=pk)
    try:
        plain = services.destination_secret_rotate(
            actor=Actor.from_request(request), destination=destination
        )
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return redirect("alerts:destination_detail", pk=pk)
    return _secret_handover(request, destination, plain)


@require_POST
@role_required(Role.ADMIN)
def destination_delete(request: HttpRequest, pk: int) -> HttpResponse:
    destination = get_object_or_404(AlertDestination, pk=pk)
    services.destination_delete(actor=Actor.from_request(request), destination=destination)
    messages.success(request, f"Removed {destination.name}.")
    return redirect("alerts:destinations")
