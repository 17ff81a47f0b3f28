"""Scope review pages under /reviews/ (URL names `reviews:…`)."""

from __future__ import annotations

from django.urls import path

import clients.urls  # noqa: F401 - registers the <scope:…> path converter

from . import views

app_name = "reviews"

urlpatterns = [
    path("", views.matrix, name="matrix"),
    path("export/", views.export, name="export"),
    path("findings/", views.findings, name="findings"),
    path("findings/<int:pk>/archive/", views.finding_archive, name="finding_archive"),
    path("clients/<slug:client_id>/usage/", views.client_usage, name="client_usage"),
    path("clients/<slug:client_id>/", views.recommendation, name="recommendation"),
    path("clients/<slug:client_id>/apply/", views.apply, name="apply"),
    path("scopes/<scope:name>/usage/", views.scope_usage, name="scope_usage"),
    path("changes/<uuid:pk>/", views.change_detail, name="change"),
    path("changes/<uuid:pk>/rollback/", views.rollback, name="rollback"),
]
