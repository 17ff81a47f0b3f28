from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout, update_session_auth_hash, user_login_failed
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, OuterRef
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp import login as otp_login

from alerts.models import Alert
from alerts.selectors import alerts_filtered, alerts_open_count
from analytics.activity import traffic_overview
from analytics.charts import ChartParamError, range_links, range_parse, source_links, source_parse
from audit.models import AdminAction
from audit.services import Actor
from base.http import wants_fragment
from base.once import form_once, once_put, once_take
from base.roles import ROLE_BY_GROUP, Role, role_required
from clients.models import Client, ClientSecret, Scope, ScopeGrant
from reviews.campaigns import campaigns_waiting_for
from security.models import SecretFinding
from security.selectors import open_finding_counts

from . import services, two_factor
from .forms import ROLE_CHOICES, TwoFactorCodeForm, UserActiveForm, UserCreateForm, UserRoleForm
from .models import SealedTOTPDevice
from .signals import MUST_CHANGE_PASSWORD

# Open alerts listed on the overview; the inbox has the rest.
OVERVIEW_ALERTS = 5


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
    """The console's front page. Its traffic section follows ?range= and ?source= (a
    shareable URL); htmx asks for that section (range and source switch) or for its tables
    (the 30-second poll) alone."""
    try:
        range_key = range_parse(request.GET.get("range"))
        source = source_parse(request.GET.get("source"))
    except ChartParamError as error:
        return HttpResponse(str(error), status=400, content_type="text/plain")
    context = _traffic_context(request, range_key, source)
    if wants_fragment(request) and request.htmx.target in ("traffic", "traffic-tables"):
        return render(request, f"dashboard/overview.html#{request.htmx.target}", context)
    counts = {
        "clients": Client.objects.count(),
        "active_clients": Client.objects.active().count(),
        "disabled_clients": Client.objects.disabled().count(),
        "scopes": Scope.objects.count(),
        "grants": ScopeGrant.objects.count(),
        "valid_secrets": ClientSecret.objects.valid().count(),
    }
    context |= {
        "counts": counts,
        "environments": _clients_per_environment(),
        "recent": AdminAction.objects.all()[:10],
        "findings": _open_findings_per_kind(),
        "open_alert_total": alerts_open_count(),
        "open_alerts": list(alerts_filtered(status=Alert.Status.OPEN)[:OVERVIEW_ALERTS]),
        "reviews_waiting": campaigns_waiting_for(request.user),
    }
    return render(request, "dashboard/overview.html", context)


def _traffic_context(request: HttpRequest, range_key: str, source: str | None) -> dict:
    traffic = traffic_overview(range_key=range_key, source=source)
    path = reverse("dashboard:overview")
    query = urlencode({k: v for k, v in {"range": range_key, "source": source}.items() if v})
    return {
        "traffic": traffic,
        "window": traffic.window,
        "traffic_url": f"{path}?{query}",
        "range_links": range_links(current=range_key, path=path, source=source),
        "source_links": source_links(
            current=source, choices=traffic.source_choices, path=path, range_key=range_key
        ),
    }


def _open_findings_per_kind() -> list[dict]:
    counted = open_finding_counts()
    return [
        {"kind": kind, "label": label, "count": counted.get(kind, 0)}
        for kind, label in SecretFinding.Kind.choices
    ]


def _user_or_404(username: str) -> User:
    return get_object_or_404(User.objects.prefetch_related("groups"), username=username)


def _with_two_factor(users):
    enrolled = SealedTOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
    return users.annotate(two_factor=Exists(enrolled))


def _annotate_role(user: User) -> User:
    # Reads the prefetched groups, so the list costs two queries whatever its length.
    roles = [ROLE_BY_GROUP[g.name] for g in user.groups.all() if g.name in ROLE_BY_GROUP]
    user.role_label = max(roles).label if roles else None
    return user


def _users_page(request: HttpRequest, form: UserCreateForm, status: int = 200) -> HttpResponse:
    users = _with_two_factor(User.objects.order_by("username").prefetch_related("groups"))
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
        user = _with_two_factor(User.objects.prefetch_related("groups")).get(pk=user.pk)
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


@require_POST
@role_required(Role.ADMIN)
def user_two_factor_reset(request: HttpRequest, username: str) -> HttpResponse:
    user = _user_or_404(username)
    try:
        two_factor.two_factor_reset(actor=Actor.from_request(request), user=user)
    except two_factor.TwoFactorRefused as refused:
        return _row_response(request, user, str(refused))
    if not request.htmx:
        messages.success(request, f"Two-factor sign-in of {user.username} reset.")
    return _row_response(request, user, None)


# --- Two-factor sign-in (the user's own) ---------------------------------------------------

TWO_FACTOR_FAILURES = "keyward_2fa_failures"


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return reverse("dashboard:overview")


def _two_factor_page(request: HttpRequest, form: TwoFactorCodeForm, status: int = 200):
    user = request.user
    context = {
        "form": form,
        "next": _next_url(request),
        "required": request.session.get(two_factor.PENDING_SESSION_KEY) == two_factor.ENROL,
        "authenticator": two_factor.authenticator_for(user),
        "codes_left": two_factor.recovery_codes_left(user),
    }
    if context["authenticator"] is None:
        device = two_factor.two_factor_enrolment_start(user=user)
        context["qr_data_uri"] = two_factor.enrolment_qr_data_uri(device)
        context["key_text"] = two_factor.enrolment_key_text(device)
    response = render(request, "dashboard/two_factor.html", context, status=status)
    response["Cache-Control"] = "no-store"  # the enrolment key is a secret
    return response


RECOVERY_CODES_ONCE = "recovery-codes"


def _recovery_codes_handover(request: HttpRequest, codes: list[str], enrolled: bool):
    """Redirect to the page that shows the new codes once (base/once.py), never stored in
    plain text anywhere else."""
    value = {"codes": codes, "enrolled": enrolled, "next": _next_url(request)}
    once_put(request, RECOVERY_CODES_ONCE, value)
    return redirect("dashboard:two_factor_recovery_codes")


@require_GET
@role_required(Role.VIEWER)
def two_factor_page(request: HttpRequest) -> HttpResponse:
    """Enrol an authenticator (QR code or key, then a code), or see and renew recovery codes."""
    return _two_factor_page(request, TwoFactorCodeForm())


@require_POST
@role_required(Role.VIEWER)
def two_factor_confirm(request: HttpRequest) -> HttpResponse:
    form = TwoFactorCodeForm(request.POST)
    device = SealedTOTPDevice.objects.filter(user=request.user, confirmed=False).first()
    if device is None or two_factor.authenticator_for(request.user) is not None:
        return redirect("dashboard:two_factor")
    codes = None
    if form.is_valid():
        codes = two_factor.two_factor_enrol(
            actor=Actor.from_request(request), device=device, code=form.cleaned_data["code"]
        )
    if codes is None:
        form.add_error(
            "code", "That code does not match. Check the clock on your phone and try the next code."
        )
        return _two_factor_page(request, form, status=400)
    otp_login(request, device)
    request.session.pop(two_factor.PENDING_SESSION_KEY, None)
    return _recovery_codes_handover(request, codes, enrolled=True)


@require_http_methods(["GET", "POST"])
@role_required(Role.VIEWER)
def two_factor_recovery_codes(request: HttpRequest) -> HttpResponse:
    """GET: the codes just made, once (a reload says they were shown). POST: new codes."""
    if request.method == "GET":
        shown = once_take(request, RECOVERY_CODES_ONCE) or {}
        context = {
            "codes": shown.get("codes"),
            "enrolled": shown.get("enrolled", False),
            "next": shown.get("next") or reverse("dashboard:two_factor"),
        }
        response = render(request, "dashboard/two_factor_codes.html", context)
        response["Cache-Control"] = "no-store"
        return response
    try:
        codes = two_factor.two_factor_recovery_codes_regenerate(
            actor=Actor.from_request(request), user=request.user
        )
    except two_factor.TwoFactorRefused as refused:
        messages.error(request, str(refused))
        return redirect("dashboard:two_factor")
    return _recovery_codes_handover(request, codes, enrolled=False)


@require_http_methods(["GET", "POST"])
@role_required(Role.VIEWER)
def two_factor_verify(request: HttpRequest) -> HttpResponse:
    """The login's second step: a code from the app or a recovery code.

    Each wrong code is audited, counts as a failed login for axes (so the password step's
    limits see it) and is delayed by django-otp's throttle; after KEYWARD_2FA_MAX_FAILURES
    in one login the session ends and the password must be given again.
    """
    if request.session.get(two_factor.PENDING_SESSION_KEY) != two_factor.VERIFY:
        return redirect(_next_url(request))
    form = TwoFactorCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = request.user
        device = two_factor.two_factor_verify(
            actor=Actor.from_request(request), user=user, code=form.cleaned_data["code"]
        )
        if device is not None:
            otp_login(request, device)
            request.session.pop(two_factor.PENDING_SESSION_KEY, None)
            request.session.pop(TWO_FACTOR_FAILURES, None)
            return redirect(_next_url(request))
        return _two_factor_failed(request, user, form)
    return render(
        request, "dashboard/two_factor_verify.html", {"form": form, "next": _next_url(request)}
    )


def _two_factor_failed(request: HttpRequest, user: User, form: TwoFactorCodeForm) -> HttpResponse:
    credentials = {"username": user.get_username()}
    user_login_failed.send(sender=__name__, credentials=credentials, request=request)
    failures = request.session.get(TWO_FACTOR_FAILURES, 0) + 1
    if failures >= settings.KEYWARD_2FA_MAX_FAILURES:
        logout(request)
        messages.error(request, "Too many wrong codes. Log in again.")
        return redirect("login")
    request.session[TWO_FACTOR_FAILURES] = failures
    form.add_error("code", "That code is not right, or was already used. Try the next code.")
    context = {"form": form, "next": _next_url(request)}
    return render(request, "dashboard/two_factor_verify.html", context, status=400)
