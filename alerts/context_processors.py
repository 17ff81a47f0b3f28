"""Template context every console page gets from the alerts app."""

from __future__ import annotations

from django.http import HttpRequest

from base.roles import user_role

from .selectors import alerts_open_count


def open_alerts(request: HttpRequest) -> dict:
    """The open-alert count in the navigation: a callable, so it is counted only when a
    full page renders it (not for fragments), and from a cache shared for a few seconds."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or user_role(user) is None:
        return {}
    return {"open_alert_count": alerts_open_count}
