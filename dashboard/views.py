from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.models import AdminAction
from audit.services import Actor
from base.once import form_once, once_put, once_take
from base.roles import ROLE_BY_GROUP, Role, role_required
from clients.models import Client, ClientSecret, Scope, ScopeGrant
from security.models import SecretFinding
from security.selectors import open_finding_counts

from . import services
from .forms import ROLE_CHOICES, UserActiveForm, UserCreateForm, UserRoleForm
from .signals import MUST_CHANGE_PASSWORD


def _clients_per_environment() -> list[dict]:
    counted = dict(
        Client.objects.values_list("environment").annotate(n=Count("id")).order_by("environment")
    )
    return [
        {"value": value, "label": label, "count": counted.get(value, 0)}
        for value, label in Client.Environment.choices
    ]


@require_GET
@role_required(Role.VIEWER)
def overview(request: HttpRequest) -> HttpResponse:
    counts = {
        "clients": Client.objects.count(),
        "active_clients": Client.objects.active().count(),
        "disabled_clients": Client.objects.disabled().count(),
        "scopes": Scope.objects.count(),
        "grants": ScopeGrant.objects.count(),
        "valid_secrets": ClientSecret.objects.valid().count(),
    }
    context = {
        "counts": counts,
        "environments": _clients_per_environment(),
        "recent": AdminAction.objects.all()[:10],
        "findings": _open_findings_per_kind(),
    }
    return render(request, "dashboard/overview.html", context)


def _open_findings_per_kind() -> list[dict]:
    counted = open_finding_counts()
    return [
        {"kind": kind, "label": label, "count": counted.get(kind, 0)}
        for kind, label in SecretFinding.Kind.choices
    ]


def _user_or_404(username: str) -> User:
    return get_object_or_404(User.objects.prefetch_related("groups"), username=username)


def _annotate_role(user: User) -> User:
    # Reads the prefetched groups, so the list costs two queries whatever its length.
    roles = [ROLE_BY_GROUP[g.name] for g in user.groups.all() if g.name in ROLE_BY_GROUP]
    user.role_label = max(roles).label if roles else None
    return user


def _users_page(request: HttpRequest, form: UserCreateForm, status: int = 200) -> HttpResponse:
    users = User.objects.order_by("username").prefetch_related("groups")
    users = [_annotate_role(user) for user in users]
    context = {"users": users, "form": form, "role_choices": ROLE_CHOICES}
    return render(request, "dashboard/users.html", context, status=status)


@require_GET
@role_required(Role.ADMIN)
def user_list(request: HttpRequest) -> HttpResponse:
    return _users_page(request, UserCreateForm())


@require_POST
@role_required(Role.ADMIN)
@form_once
def user_create(request: HttpRequest) -> HttpResponse:
    form = UserCreateForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        generated = data["password_generated"]
        try:
            user = services.user_create(
                actor=Actor.from_request(request),
                username=data["username"],
                email=data["email"],
                role=data["role"],
                password=data["password"],
                must_change_password=generated,
            )
        except ValidationError as error:
            # A race on the username, or a rule the form did not check.
            form.add_error(None, error)
        else:
            messages.success(request, f"Added {user.username} as {data['role']}.")
            if not generated:
                return redirect("dashboard:users")
            return _password_handover(request, user, data["password"], "created")
    return _users_page(request, form, status=400)


# A password the admin sees once: generated for a new user, or a reset ---------------------


def _password_once_name(user: User) -> str:
    return f"user-password:{user.username}"


def _password_handover(request: HttpRequest, user: User, password: str, kind: str):
    """Redirect to the page that shows `password` once (base/once.py), never in a URL."""
    once_put(request, _password_once_name(user), {"password": password, "kind": kind})
    return redirect("dashboard:user_password", username=user.username)


@require_POST
@role_required(Role.ADMIN)
@form_once
def user_password_reset(request: HttpRequest, username: str) -> HttpResponse:
    user = _user_or_404(username)
    try:
        password = services.user_password_reset(actor=Actor.from_request(request), user=user)
    except services.UserChangeRefused as refused:
        messages.error(request, str(refused))
        return redirect("dashboard:users")
    return _password_handover(request, user, password, "reset")


@require_GET
@role_required(Role.ADMIN)
@never_cache
def user_password(request: HttpRequest, username: str) -> HttpResponse:
    """The generated password, once; a reload says it was shown and how to get another."""
    user = _user_or_404(username)
    shown = once_take(request, _password_once_name(user)) or {}
    context = {
        "account": _annotate_role(user),
        "password": shown.get("password"),
        "kind": shown.get("kind"),
    }
    response = render(request, "dashboard/user_password.html", context)
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
@role_required(Role.VIEWER)
def password_change(request: HttpRequest) -> HttpResponse:
    """Everyone changes their own password here; after a reset or a generated first password
    keyward.middleware.PasswordChangeMiddleware sends them nowhere else until they have."""
    form = PasswordChangeForm(request.user, request.POST if request.method == "POST" else None)
    for field in form.fields.values():
        field.widget.attrs.pop("autofocus", None)  # keyward.js focuses the error summary
    if request.method == "POST" and form.is_valid():
        services.user_password_change(
            actor=Actor.from_request(request),
            user=request.user,
            password=form.cleaned_data["new_password1"],
        )
        update_session_auth_hash(request, request.user)  # this session stays signed in
        request.session.pop(MUST_CHANGE_PASSWORD, None)
        messages.success(request, "Your password is changed.")
        return redirect("dashboard:overview")
    context = {"form": form, "required": request.session.get(MUST_CHANGE_PASSWORD, False)}
    return render(
        request, "dashboard/password_change.html", context, status=400 if form.errors else 200
    )


def _row_response(request: HttpRequest, user: User, error: str | None) -> HttpResponse:
    """htmx gets the user's row back (with the error inline); a plain form post a redirect."""
    if request.htmx:
        context = {
            "account": _annotate_role(user),
            "row_error": error,
            "role_choices": ROLE_CHOICES,
        }
        return render(request, "dashboard/users.html#user-row", context)
    if error:
        messages.error(request, error)
    return redirect("dashboard:users")


@require_POST
@role_required(Role.ADMIN)
def user_set_role(request: HttpRequest, username: str) -> HttpResponse:
    user = _user_or_404(username)
    form = UserRoleForm(request.POST)
    if not form.is_valid():
        return _row_response(request, user, "Pick one of viewer, operator or admin.")
    try:
        services.user_set_role(
            actor=Actor.from_request(request), user=user, role=form.cleaned_data["role"]
        )
    except services.UserChangeRefused as refused:
        return _row_response(request, user, str(refused))
    if not request.htmx:
        messages.success(request, f"{user.username} is now {form.cleaned_data['role']}.")
    return _row_response(request, user, None)


@require_POST
@role_required(Role.ADMIN)
def user_set_active(request: HttpRequest, username: str) -> HttpResponse:
    user = _user_or_404(username)
    form = UserActiveForm(request.POST)
    if not form.is_valid():
        return _row_response(request, user, "Unknown state.")
    active = form.cleaned_data["active"]
    try:
        services.user_set_active(actor=Actor.from_request(request), user=user, active=active)
    except services.UserChangeRefused as refused:
        return _row_response(request, user, str(refused))
    if not request.htmx:
        state = "reactivated" if active else "deactivated"
        messages.success(request, f"{user.username} {state}.")
    return _row_response(request, user, None)
