from __future__ import annotations

from django.urls import path, register_converter

from . import views
from .models import SCOPE_NAME_PATTERN


class ScopeNameConverter:
    """Only well-formed scope names reach the views (a NUL byte would reach PostgreSQL)."""

    regex = SCOPE_NAME_PATTERN

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ScopeNameConverter, "scope")

app_name = "clients"

# Fixed paths come before the identifiers. A client_id is 24 characters, so never "new";
# a scope name starts with a letter, so never "_new".
urlpatterns = [
    path("", views.client_list, name="list"),
    path("new/", views.client_register, name="register"),
    path("scopes/", views.scope_list, name="scope_list"),
    path("scopes/_new/", views.scope_create, name="scope_create"),
    path("scopes/<scope:name>/", views.scope_detail, name="scope_detail"),
    path("scopes/<scope:name>/edit/", views.scope_edit, name="scope_edit"),
    path("scopes/<scope:name>/delete/", views.scope_delete, name="scope_delete"),
    path("<slug:client_id>/", views.client_detail, name="detail"),
    path("<slug:client_id>/edit/", views.client_edit, name="edit"),
    path("<slug:client_id>/secret/", views.client_secret, name="secret"),
    path("<slug:client_id>/status/", views.client_set_status, name="set_status"),
    path("<slug:client_id>/disable/", views.client_disable, name="disable"),
    path("<slug:client_id>/delete/", views.client_delete, name="delete"),
    path("<slug:client_id>/scopes/add/", views.client_scope_add, name="scope_add"),
    path(
        "<slug:client_id>/scopes/<scope:scope_name>/remove/",
        views.client_scope_remove,
        name="scope_remove",
    ),
    path(
        "<slug:client_id>/scopes/<scope:scope_name>/reason/",
        views.client_scope_reason,
        name="scope_reason",
    ),
]
