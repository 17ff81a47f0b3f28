"""Project-level views: the health check and the error handlers."""

from __future__ import annotations

import logging
import math
import threading

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from audit.services import Actor, admin_action_record
from base.roles import user_role
from tokens.pipeline import pipeline_status

from .login_limits import lock_remaining

security_log = logging.getLogger("keyward.security")


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The whole service: database, and the token-event pipeline (beat, drain, buffer).

    503 with the reasons in plain words when degraded. A dead beat makes this 503 while
    tokens are still served, so load balancers should ask /healthz/web instead.
    """
    reasons = _database_problems() + [str(p) for p in pipeline_status().problems]
    if reasons:
        return JsonResponse({"status": "degraded", "reasons": reasons}, status=503)
    return JsonResponse({"status": "ok"})


@require_GET
def healthz_web(request: HttpRequest) -> JsonResponse:
    """This web process and its database: whether to send it traffic."""
    reasons = _database_problems()
    if reasons:
        return JsonResponse({"status": "degraded", "reasons": reasons}, status=503)
    return JsonResponse({"status": "ok"})


def _database_problems() -> list[str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return [f"The database cannot be reached ({exc.__class__.__name__})."]
    return []


_login_view = auth_views.LoginView.as_view(redirect_authenticated_user=True)
# Each login runs the password hash (PBKDF2, hundreds of ms of CPU) on a web thread. Capped
# per process, so a burst of logins always leaves threads for the token service, the JWKS
# and the health check, which share the same few threads (bin/serve).
_logins_hashing = threading.BoundedSemaphore(settings.KEYWARD_LOGINS_PER_PROCESS)


def login(request: HttpRequest) -> HttpResponse:
    """Django's login view; a POST while the process is at its cap is answered 503 at once."""
    if request.method != "POST":
        return _login_view(request)
    if not _logins_hashing.acquire(blocking=False):
        security_log.warning(
            "login refused: %s logins already hashing", settings.KEYWARD_LOGINS_PER_PROCESS
        )
        context = {"busy": True, "next": request.POST.get("next", "")}
        response = render(request, "registration/login.html", context, status=503)
        response["Retry-After"] = "1"
        return response
    try:
        return _login_view(request)
    finally:
        _logins_hashing.release()


def locked_out(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """Axes's answer to a locked login (AXES_LOCKOUT_CALLABLE): 429 with the time left.

    The same words for every lock (pair, address, username; real or unknown user), so it
    tells an attacker nothing about which usernames exist.
    """
    seconds = max(lock_remaining(request, credentials).total_seconds(), 1)
    context = {"minutes": math.ceil(seconds / 60)}
    response = render(request, "registration/locked_out.html", context, status=429)
    response["Retry-After"] = str(math.ceil(seconds))
    return response


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Every refused request: a log line, an audit row and the 403 page.

    `base.roles.RoleRequired` says which role was needed; other PermissionDenied errors
    (Django's own) are recorded the same way without one.
    """
    needed = getattr(exception, "needed", None)
    needed_label = needed.label if needed is not None else None
    user = getattr(request, "user", None)
    security_log.warning(
        "forbidden user=%s role=%s needed=%s method=%s path=%s",
        user.get_username() if user is not None else "",
        getattr(user_role(user), "label", None) if user is not None else None,
        needed_label,
        request.method,
        request.path,
    )
    if user is not None:
        admin_action_record(
            actor=Actor.from_request(request),
            action="access.denied",
            target_type="url",
            target_id=request.path[:128],
            after={"method": request.method, "needed_role": needed_label},
        )
    return render(request, "403.html", {"needed": needed_label}, status=403)
