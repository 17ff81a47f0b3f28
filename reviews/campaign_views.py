"""Review campaign pages under /reviews/campaigns/: the list, starting one (admin), the
decision page (a reviewer's own pending items; an admin's: everyone's), deciding one or
several items, closing early (admin), and the report (printable HTML and CSV)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.services import Actor
from base.export import csv_lines
from base.once import form_once
from base.roles import Role, role_required, user_role

from . import campaigns, selectors
from .forms import CampaignForm, DecisionForm
from .models import CampaignItem, ReviewCampaign
from .scan import unused_after_days


def _is_admin(request: HttpRequest) -> bool:
    role = user_role(request.user)
    return role is not None and role >= Role.ADMIN


@require_GET
@role_required(Role.VIEWER)
def campaign_list(request: HttpRequest) -> HttpResponse:
    rows = ReviewCampaign.objects.annotate(
        total=Count("items"),
        pending=Count("items", filter=Q(items__decision="", items__grant_gone_at__isnull=True)),
        mine=Count(
            "items",
            filter=Q(
                items__decision="", items__grant_gone_at__isnull=True, items__reviewer=request.user
            ),
        ),
    )
    return render(request, "reviews/campaigns.html", {"campaigns": rows})


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
@form_once
def campaign_new(request: HttpRequest) -> HttpResponse:
    form = CampaignForm(
        request.POST if request.method == "POST" else None,
        teams=selectors.scope_teams(),
        reviewers=campaigns.console_users(),
        # Four weeks is a usual review window; the admin starting it is a safe fallback.
        initial={
            "deadline": timezone.now().date() + timedelta(days=28),
            "fallback_reviewer": request.user.pk,
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            campaign = campaigns.campaign_start(
                actor=Actor.from_request(request),
                name=form.cleaned_data["name"],
                selection=form.cleaned_data["selection"],
                selection_value=form.selection_value(),
                deadline=form.deadline_at(),
                recurrence=form.cleaned_data["recurrence"],
                no_response_policy=form.cleaned_data["no_response_policy"],
                fallback_reviewer=form.cleaned_data["fallback_reviewer"],
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            count = campaign.items.count()
            messages.success(request, f"Started {campaign.name}: {count} grants to review.")
            return redirect("reviews:campaign", pk=campaign.pk)
    status = 400 if form.is_bound else 200
    return render(request, "reviews/campaign_new.html", {"form": form}, status=status)


def _form_errors(form: CampaignForm, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@require_GET
@role_required(Role.VIEWER)
def campaign_detail(request: HttpRequest, pk) -> HttpResponse:
    """The decision page: what waits for this user (for an admin, for everyone)."""
    campaign = get_object_or_404(ReviewCampaign, pk=pk)
    is_admin = _is_admin(request)
    items = campaign.items.filter(decision="", grant_gone_at__isnull=True)
    if not is_admin:
        items = items.filter(reviewer=request.user)
    items = campaigns.items_with_live_usage(list(items.select_related("reviewer")))
    return render(
        request,
        "reviews/campaign.html",
        {
            "campaign": campaign,
            "items": items,
            "is_admin": is_admin,
            "counts": _counts(campaign),
            "unused_days": unused_after_days(),
        },
    )


def _counts(campaign: ReviewCampaign) -> dict:
    return campaign.items.aggregate(
        total=Count("pk"),
        pending=Count("pk", filter=Q(decision="", grant_gone_at__isnull=True)),
        kept=Count("pk", filter=Q(decision="keep")),
        removed=Count("pk", filter=Q(decision="remove")),
        gone=Count("pk", filter=Q(grant_gone_at__isnull=False)),
    )


def _check_reviewer(request: HttpRequest, items) -> None:
    """Only the assigned reviewer decides an item; an admin may decide any."""
    if _is_admin(request):
        return
    if any(item.reviewer_id != request.user.pk for item in items):
        raise PermissionDenied("You are not the reviewer of every selected grant.")


@require_POST
@role_required(Role.VIEWER)
def campaign_decide(request: HttpRequest, pk) -> HttpResponse:
    """Keep or remove one item (the row's form; htmx swaps the row) or several (the bulk
    form), with one justification; answers with a redirect to the decision page."""
    campaign = get_object_or_404(ReviewCampaign, pk=pk)
    form = DecisionForm(request.POST, campaign=campaign)
    form.is_valid()
    items = list(form.cleaned_data.get("items") or [])
    _check_reviewer(request, items)
    error, decided = _decide(request, campaign, form, items)
    if request.htmx and len(items) == 1:
        return _row(request, campaign, items[0], error)
    if error:
        messages.error(request, error)
    elif decided:
        verb = {"keep": "Kept", "remove": "Removed"}[form.cleaned_data["decision"]]
        names = ", ".join(f"{item.client_name} {item.scope}" for item in decided)
        messages.success(request, f"{verb}: {names}.")
    else:
        messages.info(request, "Nothing to decide: decided already, or removed elsewhere.")
    return redirect("reviews:campaign", pk=campaign.pk)


def _decide(request, campaign, form, items) -> tuple[str, list[CampaignItem]]:
    if not form.is_valid():
        return " ".join(error for errors in form.errors.values() for error in errors), []
    try:
        decided = campaigns.campaign_decide(
            actor=Actor.from_request(request),
            campaign=campaign,
            items=items,
            decision=form.cleaned_data["decision"],
            justification=form.cleaned_data["justification"],
        )
    except campaigns.CampaignClosed as exc:
        return str(exc), []
    except ValidationError as exc:
        return " ".join(exc.messages), []
    return "", decided


def _row(request: HttpRequest, campaign, item: CampaignItem, error: str) -> HttpResponse:
    item.refresh_from_db()
    campaigns.items_with_live_usage([item])
    context = {"campaign": campaign, "item": item, "error": error, "is_admin": _is_admin(request)}
    return render(request, "reviews/campaign.html#item-row", context)


@require_POST
@role_required(Role.ADMIN)
def campaign_close(request: HttpRequest, pk) -> HttpResponse:
    campaign = get_object_or_404(ReviewCampaign, pk=pk)
    try:
        campaigns.campaign_close(actor=Actor.from_request(request), campaign=campaign)
    except campaigns.CampaignClosed as exc:
        messages.info(request, str(exc))
    else:
        messages.success(
            request, f"Closed {campaign.name}: the no-response policy decided the rest."
        )
    return redirect("reviews:campaign_report", pk=campaign.pk)


@require_GET
@role_required(Role.VIEWER)
def campaign_report(request: HttpRequest, pk) -> HttpResponse:
    """Every item with its decision, for auditors: a page made to print (no navigation)."""
    campaign = get_object_or_404(ReviewCampaign, pk=pk)
    items = campaign.items.select_related("change")
    return render(
        request,
        "reviews/campaign_report.html",
        {"campaign": campaign, "items": items, "counts": _counts(campaign)},
    )


REPORT_HEADER = [
    "campaign", "deadline", "client_id", "client", "environment", "scope", "sensitive",
    "reviewer", "recommendation", "decision", "decided_by", "decided_at", "justification",
    "change_id", "change_rolled_back_at", "last_requested", "last_issued",
    "requested_30d", "requested_90d", "granted_at", "grant_reason",
]  # fmt: skip


@require_GET
@role_required(Role.VIEWER)
def campaign_report_csv(request: HttpRequest, pk) -> StreamingHttpResponse:
    campaign = get_object_or_404(ReviewCampaign, pk=pk)
    items = campaign.items.select_related("change").iterator()
    filename = f"keyward-campaign-{campaign.deadline:%Y%m%d}-{str(campaign.pk)[:8]}.csv"
    return StreamingHttpResponse(
        csv_lines([REPORT_HEADER, *(_report_row(campaign, item) for item in items)]),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _report_row(campaign: ReviewCampaign, item: CampaignItem) -> list:
    evidence, change = item.evidence, item.change
    return [
        campaign.name, campaign.deadline.isoformat(), item.client_id, item.client_name,
        item.environment, item.scope, item.sensitive, item.reviewer_label,
        item.recommendation, item.state_label() if not item.decision else item.decision,
        item.decided_by_label, item.decided_at.isoformat() if item.decided_at else "",
        item.justification, item.change_id or "",
        change.rolled_back_at.isoformat() if change and change.rolled_back_at else "",
        evidence.get("last_requested") or "", evidence.get("last_issued") or "",
        evidence.get("requested_30d", ""), evidence.get("requested_90d", ""),
        item.granted_at.isoformat(), item.grant_reason,
    ]  # fmt: skip
