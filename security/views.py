"""Secret-lifecycle pages: policy settings, secrets health, rotate, revoke.

Reads come from security/selectors.py and clients/selectors.py; every write goes through
security/services.py, which records the audit
row in the same transaction and queues the email.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers

from audit.services import Actor
from base.http import safe_next_url, wants_fragment
from base.once import form_once
from base.roles import Role, role_check, role_required, user_role
from clients import selectors as client_selectors
from clients.models import Client, ClientSecret
from clients.views import secret_handover

from . import selectors, services
from .forms import FindingFilterForm, RotateForm, SecretPolicyForm
from .models import SecretFinding, SecretPolicy
from .scan import UNUSED_AFTER

FINDINGS_PER_PAGE = 50


def _client(client_id: str) -> Client:
    return get_object_or_404(Client, client_id=client_id)


def _back(request: HttpRequest) -> HttpResponse:
    return redirect(safe_next_url(request) or "security:health")


# Settings ---------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@role_required(Role.VIEWER)
def policy_settings(request: HttpRequest) -> HttpResponse:
    """Everyone with a role reads the policies; only admins change them."""
    policies = [SecretPolicy.for_environment(env) for env in Client.Environment.values]
    forms = {policy.environment: SecretPolicyForm.for_policy(policy) for policy in policies}
    status = 200
    if request.method == "POST":
        role_check(request, Role.ADMIN)
        environment = request.POST.get("environment", "")
        if environment not in forms:
            return HttpResponse("Unknown environment.", status=400)
        form = SecretPolicyForm(request.POST, prefix=environment)
        forms[environment] = form
        if form.is_valid():
            fields = {k: v for k, v in form.cleaned_data.items() if k != "environment"}
            try:
                services.secret_policy_update(
                    actor=Actor.from_request(request), environment=environment, **fields
                )
            except ValidationError as exc:
                form.add_error(None, exc.messages)
            else:
                messages.success(request, f"Saved the {environment} secret policy.")
                return redirect("security:settings")
        status = 400
    context = {"rows": [(policy, forms[policy.environment]) for policy in policies]}
    return render(request, "security/settings.html", context, status=status)


# Secrets health ---------------------------------------------------------------------------


@require_GET
@role_required(Role.VIEWER)
@vary_on_headers("HX-Request")  # one URL, a page or a fragment: caches keep them apart
def secrets_health(request: HttpRequest) -> HttpResponse:
    filters = FindingFilterForm(request.GET)
    kind, environment = filters.value("kind"), filters.value("environment")
    findings = selectors.open_findings(kind=kind, environment=environment)
    page = Paginator(findings, FINDINGS_PER_PAGE).get_page(request.GET.get("page"))
    role = user_role(request.user)
    context = {
        "filters": filters,
        "page": page,
        "counts": selectors.open_finding_counts(),
        "kinds": SecretFinding.Kind,
        "failed_notifications": selectors.failed_notifications() if role >= Role.ADMIN else [],
        "filter_query": urlencode(
            {k: v for k, v in [("kind", kind), ("environment", environment)] if v}
        ),
    }
    template = "security/health.html#results" if wants_fragment(request) else "security/health.html"
    return render(request, template, context)


# Rotate -----------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@role_required(Role.OPERATOR)
@vary_on_headers("HX-Request")  # the dialog alone for htmx, the page otherwise
@form_once
def rotate(request: HttpRequest, client_id: str) -> HttpResponse:
    """The rotate form, as a page or (htmx) as the client page's dialog. A refused rotation
    answers the dialog with its message in it (keyward.js swaps 4xx fragments); a done one
    redirects to the page that shows the new secret once."""
    client = _client(client_id)
    form = RotateForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                secret, plain = services.client_secret_rotate(
                    actor=Actor.from_request(request),
                    client=client,
                    grace=form.cleaned_data["grace"],
                )
            except ValidationError as exc:
                form.add_error(None, exc.messages)
                status = 409  # the request was fine; the client's state refuses it
            else:
                return secret_handover(request, secret=secret, plain=plain)
        else:
            status = 400
    context = {
        "client": client,
        "form": form,
        "valid_count": client_selectors.client_valid_secret_count(client=client),
        "max_valid": services.MAX_VALID_SECRETS,
        "next": safe_next_url(request),
    }
    # htmx loads the dialog's form alone (e.g. into a <dialog> on the client page).
    template = "security/rotate.html#dialog" if request.htmx else "security/rotate.html"
    return render(request, template, context, status=status)


# Revoke and disable -----------------------------------------------------------------------


def _still_in_use(usage) -> bool:
    """Used after a newer secret took over, or (any secret) within the window after which
    the scan calls a secret unused."""
    if usage is None or not usage.secret.is_valid():
        return False
    recent = usage.last_used_at is not None and usage.last_used_at > timezone.now() - UNUSED_AFTER
    return usage.in_use or recent


@require_http_methods(["GET", "POST"])
@role_required(Role.OPERATOR)
def revoke_secret(request: HttpRequest, client_id: str, secret_id: int) -> HttpResponse:
    client = _client(client_id)
    secret = get_object_or_404(ClientSecret, client=client, pk=secret_id)
    if request.method == "POST":
        services.client_secret_revoke(actor=Actor.from_request(request), secret=secret)
        messages.success(request, f"Revoked {secret.hint} of {client.name}.")
        return _back(request)
    valid = client_selectors.client_valid_secrets(client=client)
    progress = client_selectors.client_secret_progress(client=client)
    usage = next((row for row in progress if row.secret.pk == secret.pk), None)
    context = {
        "client": client,
        "secret": secret,
        "is_last_valid": secret.is_valid() and not valid.exclude(pk=secret.pk).exists(),
        # Said before anything is revoked: who still uses it, and when it was last used.
        "usage": usage,
        "in_use": _still_in_use(usage),
        "next": safe_next_url(request),
    }
    return render(request, "security/revoke.html", context)
