"""Dashboard pages for clients and the scope catalogue.

Reads happen here; every write goes through clients/services.py, which records the
audit row in the same transaction.
"""

from __future__ import annotations

import shlex

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from audit.models import AdminAction
from audit.services import Actor
from base.http import safe_next_url, wants_fragment
from base.once import form_once, once_put, once_take
from base.roles import Role, role_required

from . import selectors, services
from .forms import (
    ClientDeleteForm,
    ClientDisableForm,
    ClientFilterForm,
    ClientForm,
    ClientRegisterForm,
    ClientStatusForm,
    ScopeCreateForm,
    ScopeEditForm,
    ScopeGrantForm,
    ScopeGrantReasonForm,
    ScopeSearchForm,
)
from .models import Client, ClientSecret, Scope, ScopeGrant

CLIENTS_PER_PAGE = 25
RECENT_AUDIT_ROWS = 20
SORTABLE_COLUMNS = [
    ("name", "Name"),
    ("environment", "Environment"),
    ("status", "Status"),
    ("created", "Created"),
]


def _client(client_id: str) -> Client:
    return get_object_or_404(Client, client_id=client_id)


def _scope(name: str) -> Scope:
    return get_object_or_404(Scope, name=name)


def _posted(request: HttpRequest) -> QueryDict | None:
    """Bind forms on POST even when the body is empty, so the errors show."""
    return request.POST if request.method == "POST" else None


def _form_errors(form, exc: ValidationError) -> None:
    """Attach a service's ValidationError to the form; unknown fields become form errors."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


# Clients list ------------------------------------------------------------------------


def _filtered_clients(filters: ClientFilterForm) -> QuerySet[Client]:
    clients = Client.objects.prefetch_related("grants__scope")
    if q := filters.value("q"):
        clients = clients.filter(
            Q(name__icontains=q)
            | Q(client_id__icontains=q)
            | Q(owner_email__icontains=q)
            | Q(description__icontains=q)
        )
    if environment := filters.value("environment"):
        clients = clients.filter(environment=environment)
    if status := filters.value("status"):
        clients = clients.filter(status=status)
    if scope := filters.value("scope"):
        clients = clients.filter(grants__scope__name=scope)
    return clients.order_by(*filters.ordering())


def _query(filters: ClientFilterForm, **overrides: str) -> str:
    """The list's query string with the current filters, changed by `overrides`."""
    params = QueryDict(mutable=True)
    for name in ("q", "environment", "status", "scope", "sort"):
        value = overrides.get(name, filters.value(name))
        if value:
            params[name] = value
    if overrides.get("page") and overrides["page"] != "1":
        params["page"] = overrides["page"]
    return params.urlencode()


def _sort_columns(filters: ClientFilterForm) -> list[dict]:
    current = filters.value("sort") or "name"
    columns = []
    for key, label in SORTABLE_COLUMNS:
        direction = "asc" if current == key else "desc" if current == f"-{key}" else ""
        next_sort = f"-{key}" if current == key else key
        columns.append(
            {"label": label, "direction": direction, "query": _query(filters, sort=next_sort)}
        )
    return columns


@require_GET
@role_required(Role.VIEWER)
@vary_on_headers("HX-Request")  # one URL, a page or a fragment: caches keep them apart
def client_list(request: HttpRequest) -> HttpResponse:
    filters = ClientFilterForm(request.GET)
    filters.is_valid()
    page = Paginator(_filtered_clients(filters), CLIENTS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "filters": filters,
        "sort": filters.value("sort"),
        "page": page,
        "columns": _sort_columns(filters),
        "any_clients": Client.objects.exists(),
        "is_filtered": filters.is_filtered(),
        "previous_query": _query(filters, page=str(page.number - 1)) if page.number > 1 else "",
        "next_query": _query(filters, page=str(page.number + 1)) if page.has_next() else "",
    }
    template = "clients/list.html#results" if wants_fragment(request) else "clients/list.html"
    return render(request, template, context)


# Register, edit, status, delete --------------------------------------------------------


@require_http_methods(["GET", "POST"])
@role_required(Role.OPERATOR)
@form_once
def client_register(request: HttpRequest) -> HttpResponse:
    form = ClientRegisterForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        fields = dict(form.cleaned_data)
        fields["scopes"] = list(fields["scopes"])
        try:
            client, plain = services.client_register(actor=Actor.from_request(request), **fields)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"Registered {client.name}.")
            return secret_handover(request, secret=client.secrets.get(), plain=plain)
    return render(request, "clients/register.html", {"form": form})


# The plain secret between the POST that made it and the one page that shows it -----------


def _secret_once_name(client: Client) -> str:
    return f"client-secret:{client.client_id}"


def secret_handover(request: HttpRequest, *, secret: ClientSecret, plain: str) -> HttpResponse:
    """Answer the POST that created `secret` with a redirect to the page that shows it once.

    The plain secret goes into no URL, cookie, message or log: it waits, encrypted, in a
    row only this browser session's next read of the secret page takes (base/once.py).
    """
    client = secret.client
    once_put(request, _secret_once_name(client), {"secret_id": secret.pk, "plain": plain})
    url = reverse("clients:secret", args=[client.client_id])
    if getattr(request, "htmx", False):
        return HttpResponse(status=204, headers={"HX-Redirect": url})
    return redirect(url)


@require_GET
@role_required(Role.OPERATOR)
def client_secret(request: HttpRequest, client_id: str) -> HttpResponse:
    """The new secret, once; a reload says it was shown and how to get another."""
    client = _client(client_id)
    shown = once_take(request, _secret_once_name(client)) or {}
    secret = client.secrets.filter(pk=shown.get("secret_id")).first() if shown else None
    context = {
        "client": client,
        "secret": secret,
        "plain": shown.get("plain") if secret else None,
        "older": _older_valid_secrets(secret) if secret else [],
        "token_url": settings.KEYWARD_ISSUER + reverse("tokens:token"),
        "curl": token_curl(client),
    }
    response = render(request, "clients/secret_once.html", context)
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


def _older_valid_secrets(secret: ClientSecret) -> QuerySet[ClientSecret]:
    """The secrets a rotation left valid for a while (none after a registration)."""
    return secret.client.secrets.exclude(pk=secret.pk).filter(
        revoked_at__isnull=True, expires_at__gte=secret.created_at
    )


def token_curl(client: Client) -> str:
    """A copy-paste token request for `client`. `-u` without the secret makes curl ask for
    it, so the secret stays out of the shell history and the process list."""
    parts = ["curl", "-u", client.client_id, "-d", "grant_type=client_credentials"]
    if scopes := client.scope_names():
        parts += ["-d", f"scope={' '.join(scopes)}"]
    parts.append(settings.KEYWARD_ISSUER + reverse("tokens:token"))
    return shlex.join(parts)


@require_GET
@role_required(Role.VIEWER)
def client_detail(request: HttpRequest, client_id: str) -> HttpResponse:
    client = _client(client_id)
    return render(request, "clients/detail.html", _detail_context(request, client))


def _detail_context(request: HttpRequest, client: Client, **extra) -> dict:
    context = {
        "client": client,
        # Per secret, newest first: dates, last use, uses since the latest rotation, status.
        "secret_rows": selectors.client_secret_progress(client=client),
        "grants": client.grants.select_related("scope", "granted_by"),
        "grant_form": ScopeGrantForm(client=client),
        "audit_rows": AdminAction.objects.filter(target_type="client", target_id=client.client_id)[
            :RECENT_AUDIT_ROWS
        ],
        "token_events": selectors.client_recent_token_events(client=client),
        "curl": token_curl(client),
    }
    return context | extra


@require_http_methods(["GET", "POST"])
@role_required(Role.OPERATOR)
def client_edit(request: HttpRequest, client_id: str) -> HttpResponse:
    client = _client(client_id)
    form = ClientForm(_posted(request), initial=ClientForm.initial_for(client), client=client)
    if request.method == "POST" and form.is_valid():
        try:
            services.client_update(
                actor=Actor.from_request(request), client=client, **form.cleaned_data
            )
        except ValidationError as exc:
            _form_errors(form, exc)
            client = _client(client_id)  # the service left unsaved changes on the instance
        else:
            messages.success(request, f"Saved {client.name}.")
            return redirect("clients:detail", client_id=client.client_id)
    return render(request, "clients/edit.html", {"client": client, "form": form})


@require_POST
@role_required(Role.OPERATOR)
def client_set_status(request: HttpRequest, client_id: str) -> HttpResponse:
    """Enable at once; disabling goes through its confirmation page (client_disable)."""
    client = _client(client_id)
    form = ClientStatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Unknown status; nothing changed.")
        return redirect("clients:detail", client_id=client.client_id)
    if form.cleaned_data["status"] == Client.Status.DISABLED:
        return redirect("clients:disable", client_id=client.client_id)
    services.client_set_status(
        actor=Actor.from_request(request), client=client, status=Client.Status.ACTIVE
    )
    messages.success(request, f"{client.name} is enabled.")
    return redirect("clients:detail", client_id=client.client_id)


@require_http_methods(["GET", "POST"])
@role_required(Role.OPERATOR)
def client_disable(request: HttpRequest, client_id: str) -> HttpResponse:
    """Ask first: the token service refuses a disabled client at once, so every consumer
    stops. A production client's name must be typed, as for deletion."""
    client = _client(client_id)
    form = ClientDisableForm(_posted(request), client=client)
    next_url = safe_next_url(request)
    if request.method == "POST" and form.is_valid():
        services.client_set_status(
            actor=Actor.from_request(request), client=client, status=Client.Status.DISABLED
        )
        messages.success(request, f"{client.name} is disabled: the token service refuses it.")
        return redirect(next_url or reverse("clients:detail", args=[client.client_id]))
    context = {"client": client, "form": form, "next": next_url}
    status = 400 if form.errors else 200
    return render(request, "clients/disable.html", context, status=status)


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def client_delete(request: HttpRequest, client_id: str) -> HttpResponse:
    client = _client(client_id)
    form = ClientDeleteForm(_posted(request), client=client)
    if request.method == "POST" and form.is_valid():
        services.client_delete(actor=Actor.from_request(request), client=client)
        messages.success(request, f"Deleted {form.cleaned_data['confirm_name']}.")
        return redirect("clients:list")
    return render(request, "clients/delete.html", {"client": client, "form": form})


# Scope grants on the client page -------------------------------------------------------


def _scopes_response(request: HttpRequest, client: Client, grant_form=None) -> HttpResponse:
    """htmx: the scopes partial plus the audit list out of band; otherwise back to the page."""
    if not request.htmx:
        if grant_form is not None and grant_form.errors:
            context = _detail_context(request, client, grant_form=grant_form)
            return render(request, "clients/detail.html", context, status=400)
        return redirect("clients:detail", client_id=client.client_id)
    context = _detail_context(request, client)
    status = 200
    if grant_form is not None:
        context["grant_form"] = grant_form
        status = 422 if grant_form.errors else 200  # keyward.js swaps 422 fragments in
    return render(request, "clients/_scopes_response.html", context, status=status)


def _detail_url(request: HttpRequest, client_id: str) -> str:
    return reverse("clients:detail", args=[client_id])


@require_POST
@role_required(Role.OPERATOR)
@form_once(result=_detail_url)
def client_scope_add(request: HttpRequest, client_id: str) -> HttpResponse:
    client = _client(client_id)
    form = ScopeGrantForm(request.POST, client=client)
    if not form.is_valid():
        return _scopes_response(request, client, grant_form=form)
    scope = form.cleaned_data["scope"]
    try:
        services.scope_grant(
            actor=Actor.from_request(request),
            client=client,
            scope=scope,
            reason=form.cleaned_data["reason"],
        )
    except ValidationError as exc:
        _form_errors(form, exc)
        return _scopes_response(request, client, grant_form=form)
    if not request.htmx:
        messages.success(request, f"Granted {scope.name}.")
    return _scopes_response(request, client)


@require_POST
@role_required(Role.OPERATOR)
def client_scope_remove(request: HttpRequest, client_id: str, scope_name: str) -> HttpResponse:
    client = _client(client_id)
    grant = get_object_or_404(ScopeGrant, client=client, scope__name=scope_name)
    services.scope_revoke(actor=Actor.from_request(request), client=client, scope=grant.scope)
    if not request.htmx:
        messages.success(request, f"Removed {scope_name}.")
    return _scopes_response(request, client)


@require_POST
@role_required(Role.OPERATOR)
def client_scope_reason(request: HttpRequest, client_id: str, scope_name: str) -> HttpResponse:
    """Record or change why the client holds the scope (the findings ask for one)."""
    client = _client(client_id)
    grant = get_object_or_404(
        ScopeGrant.objects.select_related("client", "scope"), client=client, scope__name=scope_name
    )
    form = ScopeGrantReasonForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError(form.errors["reason"])
        services.scope_grant_reason_update(
            actor=Actor.from_request(request), grant=grant, reason=form.cleaned_data["reason"]
        )
    except ValidationError as exc:
        messages.error(request, f"Reason for {scope_name} not saved: {' '.join(exc.messages)}")
    else:
        messages.success(request, f"Saved the reason for {scope_name}.")
    return _scopes_response(request, client)


# Scope catalogue -----------------------------------------------------------------------


@require_GET
@role_required(Role.VIEWER)
@vary_on_headers("HX-Request")  # one URL, a page or a fragment: caches keep them apart
def scope_list(request: HttpRequest) -> HttpResponse:
    search = ScopeSearchForm(request.GET)
    search.is_valid()
    scopes = Scope.objects.annotate(holder_count=Count("grants")).order_by("name")
    if q := search.cleaned_data.get("q"):
        scopes = scopes.filter(
            Q(name__icontains=q) | Q(description__icontains=q) | Q(owning_team__icontains=q)
        )
    context = {"search": search, "scopes": scopes, "q": q, "any_scopes": Scope.objects.exists()}
    template = "clients/scope_list.html#results" if wants_fragment(request) else None
    return render(request, template or "clients/scope_list.html", context)


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
@form_once
def scope_create(request: HttpRequest) -> HttpResponse:
    form = ScopeCreateForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            scope = services.scope_create(actor=Actor.from_request(request), **form.cleaned_data)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"Created scope {scope.name}.")
            return redirect("clients:scope_detail", name=scope.name)
    return render(request, "clients/scope_form.html", {"form": form, "scope": None})


@require_GET
@role_required(Role.VIEWER)
def scope_detail(request: HttpRequest, name: str) -> HttpResponse:
    scope = _scope(name)
    return render(request, "clients/scope_detail.html", _scope_context(scope))


def _scope_context(scope: Scope, **extra) -> dict:
    grants = scope.grants.select_related("client", "granted_by").order_by("client__name")
    return {"scope": scope, "grants": grants} | extra


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def scope_edit(request: HttpRequest, name: str) -> HttpResponse:
    scope = _scope(name)
    form = ScopeEditForm(_posted(request), initial=ScopeEditForm.initial_for(scope))
    if request.method == "POST" and form.is_valid():
        try:
            services.scope_update(
                actor=Actor.from_request(request), scope=scope, **form.cleaned_data
            )
        except ValidationError as exc:
            _form_errors(form, exc)
            scope = _scope(name)
        else:
            messages.success(request, f"Saved scope {scope.name}.")
            return redirect("clients:scope_detail", name=scope.name)
    return render(request, "clients/scope_form.html", {"form": form, "scope": scope})


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def scope_delete(request: HttpRequest, name: str) -> HttpResponse:
    """Ask first, even for a scope nobody holds: resource servers may still check it."""
    scope = _scope(name)
    if request.method == "GET":
        return render(request, "clients/scope_delete.html", _scope_context(scope))
    try:
        services.scope_delete(actor=Actor.from_request(request), scope=scope)
    except services.ScopeInUse as exc:
        # 409: the request was fine but the catalogue's state forbids it right now.
        context = _scope_context(scope, delete_refused_holders=exc.holders)
        return render(request, "clients/scope_delete.html", context, status=409)
    messages.success(request, f"Deleted scope {name}.")
    return redirect("clients:scope_list")
