"""Project-level views: the health check and the error handlers."""

from __future__ import annotations

import logging

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from audit.services import Actor, admin_action_record
from base.roles import user_role

security_log = logging.getLogger("keyward.security")


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


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
