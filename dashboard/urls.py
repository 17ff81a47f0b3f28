from __future__ import annotations

from django.urls import path, register_converter

from . import views


class UsernameConverter:
    """Characters Django's username validator allows; anything else is a 404, not a query."""

    regex = r"[\w.@+-]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(UsernameConverter, "username")

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("users/", views.user_list, name="users"),
    path("users/new/", views.user_create, name="user_create"),
    path("users/<username:username>/role/", views.user_set_role, name="user_set_role"),
    path("users/<username:username>/active/", views.user_set_active, name="user_set_active"),
    path(
        "users/<username:username>/two-factor/reset/",
        views.user_two_factor_reset,
        name="user_two_factor_reset",
    ),
    path("account/two-factor/", views.two_factor_page, name="two_factor"),
    path("account/two-factor/confirm/", views.two_factor_confirm, name="two_factor_confirm"),
    path(
        "account/two-factor/recovery-codes/",
        views.two_factor_recovery_codes,
        name="two_factor_recovery_codes",
    ),
    path("login/verify/", views.two_factor_verify, name="two_factor_verify"),
]
