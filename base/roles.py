"""Roles: viewer < operator < admin, held as Django groups and checked on every view."""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import IntEnum

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse


class Role(IntEnum):
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()


ROLE_BY_GROUP = {role.label: role for role in Role}


class RoleRequired(PermissionDenied):
    """The signed-in user's role is below `needed`; the project's 403 handler answers it."""

    def __init__(self, needed: Role):
        super().__init__(f"needs the {needed.label} role")
        self.needed = needed


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


def role_check(request: HttpRequest, minimum: Role) -> None:
    """Raise RoleRequired unless the request's user holds `minimum` or more."""
    role = user_role(request.user)
    if role is None or role < minimum:
        raise RoleRequired(minimum)


def role_required(minimum: Role) -> Callable:
    """Anonymous users go to the login page; users below `minimum` get RoleRequired (403)."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            role_check(request, minimum)
            return view(request, *args, **kwargs)

        wrapper.required_role = minimum
        return wrapper

    return decorator


def role_context(request: HttpRequest) -> dict:
    role = user_role(request.user) if hasattr(request, "user") else None
    return {
        "role": role.label if role else None,
        "can_operate": role is not None and role >= Role.OPERATOR,
        "can_admin": role is not None and role >= Role.ADMIN,
    }
