"""Scope review pages under /reviews/ (URL names `reviews:…`)."""

from __future__ import annotations

from django.urls import path

import clients.urls  # noqa: F401 - registers the <scope:…> path converter

from . import campaign_views, views

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
    path("campaigns/", campaign_views.campaign_list, name="campaigns"),
    path("campaigns/new/", campaign_views.campaign_new, name="campaign_new"),
    path("campaigns/<uuid:pk>/", campaign_views.campaign_detail, name="campaign"),
    path("campaigns/<uuid:pk>/decide/", campaign_views.campaign_decide, name="campaign_decide"),
    path("campaigns/<uuid:pk>/close/", campaign_views.campaign_close, name="campaign_close"),
    path("campaigns/<uuid:pk>/report/", campaign_views.campaign_report, name="campaign_report"),
    path(
        "campaigns/<uuid:pk>/report.csv",
        campaign_views.campaign_report_csv,
        name="campaign_report_csv",
    ),
]
