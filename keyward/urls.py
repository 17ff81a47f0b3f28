"""Root URLconf: each app's pages under its own prefix and namespace."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views

urlpatterns = [
    path("login/", views.login, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("healthz/web", views.healthz_web, name="healthz_web"),
    path("clients/", include("clients.urls")),
    path("audit/", include("audit.urls")),
    path("security/", include("security.urls")),
    path("analytics/", include("analytics.urls")),
    path("alerts/", include("alerts.urls")),
    path("", include("tokens.urls")),
    path("api/", include("tokens.resource_urls")),
    path("", include("dashboard.urls")),
]

handler403 = "keyward.views.permission_denied"
