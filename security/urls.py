"""Secret-lifecycle pages; the project mounts them at security/."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "security"

urlpatterns = [
    path("", views.secrets_health, name="health"),
    path("settings/", views.policy_settings, name="settings"),
    path("clients/<slug:client_id>/rotate/", views.rotate, name="rotate"),
    path(
        "clients/<slug:client_id>/secrets/<int:secret_id>/revoke/",
        views.revoke_secret,
        name="revoke_secret",
    ),
]
