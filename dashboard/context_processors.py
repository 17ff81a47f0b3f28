"""Template context every console page gets."""

from __future__ import annotations

from django.http import HttpRequest

from base.roles import Role, user_role
from tokens.pipeline import pipeline_status_cached


def pipeline_problems(request: HttpRequest) -> dict:
    """Admins see a banner on every page while the token-event pipeline has stalled.

    A callable, so the status is read only when base.html renders the banner (not for
    fragments), and from a cache shared for a few seconds.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    role = user_role(user)
    if role is None or role < Role.ADMIN:
        return {}
    return {"pipeline_problems": lambda: pipeline_status_cached().problems}
