"""Scope review pages: usage per grant (fragments the client and scope pages load), the
clients × scopes matrix, findings with archiving, and least-privilege changes."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.services import Actor
from base.export import csv_lines
from base.roles import Role, role_required
from clients.models import Client, Scope

from . import selectors, services
from .forms import ArchiveForm, FindingFilterForm, MatrixFilterForm
from .models import Finding, GrantChange
from .recommendations import recommendation_for

FINDINGS_LIMIT = 500


@require_GET
@role_required(Role.VIEWER)
def client_usage(request: HttpRequest, client_id: str) -> HttpResponse:
    client = get_object_or_404(Client, client_id=client_id)
    usages = selectors.client_grants_usage(client)
    template = "reviews/_client_usage.html" if request.htmx else "reviews/client_usage.html"
    return render(request, template, {"client": client, "usages": usages})


@require_GET
@role_required(Role.VIEWER)
def scope_usage(request: HttpRequest, name: str) -> HttpResponse:
    scope = get_object_or_404(Scope, name=name)
    usages = selectors.scope_grants_usage(scope)
    template = "reviews/_scope_usage.html" if request.htmx else "reviews/scope_usage.html"
    return render(request, template, {"scope": scope, "usages": usages})


@require_GET
@role_required(Role.VIEWER)
def matrix(request: HttpRequest) -> HttpResponse:
    filters = MatrixFilterForm(request.GET, teams=selectors.scope_teams())
    return render(
        request,
        "reviews/matrix.html",
        {"filters": filters, "matrix": selectors.usage_matrix(**filters.query())},
    )


EXPORT_HEADER = [
    "client_id", "client", "environment", "status", "scope", "sensitive", "team",
    "granted_at", "reason", "last_requested", "last_issued",
    "requested_30d", "issued_30d", "requested_90d", "issued_90d", "recency",
    "last_exercised", "exercised_30d",
]  # fmt: skip


@require_GET
@role_required(Role.VIEWER)
def export(request: HttpRequest) -> StreamingHttpResponse:
    """Who holds what, with usage: the matrix's grants (same filters) as CSV."""
    filters = MatrixFilterForm(request.GET, teams=selectors.scope_teams())
    usages = selectors.grants_usage(selectors.grants_filtered(**filters.query()))
    filename = f"keyward-grants-{timezone.now():%Y%m%d-%H%M%S}.csv"
    return StreamingHttpResponse(
        csv_lines([EXPORT_HEADER, *(_export_row(usage) for usage in usages)]),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _export_row(usage: selectors.GrantUsage) -> list:
    grant, client, scope = usage.grant, usage.grant.client, usage.grant.scope
    evidence = usage.evidence()
    return [
        client.client_id, client.name, client.environment, client.status, scope.name,
        scope.sensitive, scope.owning_team, evidence["granted_at"], grant.reason,
        evidence["last_requested"] or "", evidence["last_issued"] or "",
        usage.requested_30, usage.issued_30, usage.requested_90, usage.issued_90,
        usage.recency(), _exercised(usage), usage.exercised_30,
    ]  # fmt: skip


def _exercised(usage: selectors.GrantUsage) -> str:
    """The time (ISO 8601), else "never" or "not reported" (no resource server reports the
    scope: absence of reports is no evidence of disuse)."""
    if usage.last_exercised is not None:
        return usage.last_exercised.isoformat()
    return usage.exercised_label


@require_GET
@role_required(Role.VIEWER)
def findings(request: HttpRequest) -> HttpResponse:
    data = request.GET if request.GET else {"status": "open"}
    filters = FindingFilterForm(data)
    rows = selectors.findings_filtered(**filters.query())[:FINDINGS_LIMIT]
    return render(
        request,
        "reviews/findings.html",
        {"filters": filters, "findings": rows, "archive_form": ArchiveForm()},
    )


@require_POST
@role_required(Role.OPERATOR)
def finding_archive(request: HttpRequest, pk: int) -> HttpResponse:
    finding = get_object_or_404(Finding, pk=pk)
    form = ArchiveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a reason to archive a finding.")
        return redirect("reviews:findings")
    try:
        services.finding_archive(
            actor=Actor.from_request(request),
            finding=finding,
            reason=form.cleaned_data["reason"],
            as_rule=form.cleaned_data["as_rule"],
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Archived: {finding}.")
    return redirect("reviews:findings")


@require_GET
@role_required(Role.VIEWER)
def recommendation(request: HttpRequest, client_id: str) -> HttpResponse:
    client = get_object_or_404(Client, client_id=client_id)
    changes = GrantChange.objects.filter(client_id=client.client_id)[:20]
    return render(
        request,
        "reviews/recommendation.html",
        {"client": client, "recommendation": recommendation_for(client), "changes": changes},
    )


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def apply(request: HttpRequest, client_id: str) -> HttpResponse:
    """GET: the confirmation page; POST: remove the recommended grants."""
    client = get_object_or_404(Client, client_id=client_id)
    if request.method == "GET":
        return render(
            request,
            "reviews/apply_confirm.html",
            {"client": client, "recommendation": recommendation_for(client)},
        )
    try:
        change = services.recommendation_apply(actor=Actor.from_request(request), client=client)
    except services.NothingToApply as exc:
        messages.info(request, str(exc))
        return redirect("reviews:recommendation", client_id=client.client_id)
    messages.success(request, f"Removed {', '.join(change.scope_names())}. You can roll it back.")
    return redirect("reviews:change", pk=change.pk)


@require_GET
@role_required(Role.VIEWER)
def change_detail(request: HttpRequest, pk) -> HttpResponse:
    change = get_object_or_404(GrantChange, pk=pk)
    return render(request, "reviews/change.html", {"change": change})


@require_POST
@role_required(Role.ADMIN)
def rollback(request: HttpRequest, pk) -> HttpResponse:
    change = get_object_or_404(GrantChange, pk=pk)
    try:
        services.change_rollback(actor=Actor.from_request(request), change=change)
    except services.RollbackRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Restored {', '.join(change.scope_names())}.")
    return redirect("reviews:change", pk=change.pk)
