"""Roles: viewer < operator < admin, held as Django groups and checked on every view."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from enum import IntEnum

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

security_log = logging.getLogger("keyward.security")


class Role(IntEnum):
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()


ROLE_BY_GROUP = {role.label: role for role in Role}


def user_role(user) -> Role | None:
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    cached = getattr(user, "_keyward_role", False)
    if cached is not False:
        return cached
    names = user.groups.values_list("name", flat=True)
    roles = [ROLE_BY_GROUP[name] for name in names if name in ROLE_BY_GROUP]
    user._keyward_role = max(roles) if roles else None
    return user._keyward_role


def role_required(minimum: Role) -> Callable:
    """Anonymous users go to the login page; users below `minimum` get a 403 and a log line."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            role = user_role(request.user)
            if role is None or role < minimum:
                return forbidden(request, needed=minimum)
            return view(request, *args, **kwargs)

        wrapper.required_role = minimum
        return wrapper

    return decorator


def forbidden(request: HttpRequest, *, needed: Role) -> HttpResponse:
    from audit.services import Actor, admin_action_record

    security_log.warning(
        "forbidden user=%s role=%s needed=%s method=%s path=%s",
        request.user.get_username(),
        getattr(user_role(request.user), "label", None),
        needed.label,
        request.method,
        request.path,
    )
    admin_action_record(
        actor=Actor.from_request(request),
        action="access.denied",
        target_type="url",
        target_id=request.path[:128],
        after={"method": request.method, "needed_role": needed.label},
    )
    return render(request, "403.html", {"needed": needed.label}, status=403)


def role_context(request: HttpRequest) -> dict:
    role = user_role(request.user) if hasattr(request, "user") else None
    return {
        "role": role.label if role else None,
        "can_operate": role is not None and role >= Role.OPERATOR,
        "can_admin": role is not None and role >= Role.ADMIN,
    }
