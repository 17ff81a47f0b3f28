"""Analytics pages and the log-ingestion API, under /analytics/ (URL names `analytics:…`)."""

from __future__ import annotations

from django.urls import path

from . import chart_views, ingestion_views, views

app_name = "analytics"

urlpatterns: list = [
    path("events/", views.event_list, name="events"),
    path("events/tail/", views.event_tail, name="events_tail"),
    path("events/export.csv", views.event_export_csv, name="events_csv"),
    path("events/export.ndjson", views.event_export_ndjson, name="events_ndjson"),
    # Machine endpoint: ingestion-token auth, no session, CSRF-exempt (docs/events.md).
    path("api/ingest", ingestion_views.ingest, name="ingest"),
    path("api/usage", ingestion_views.usage, name="usage"),
    path("ingestion-tokens/", ingestion_views.ingestion_tokens, name="ingestion_tokens"),
    path(
        "ingestion-tokens/new/",
        ingestion_views.ingestion_token_new,
        name="ingestion_token_new",
    ),
    path(
        "ingestion-tokens/<uuid:token_id>/",
        ingestion_views.ingestion_token_shown,
        name="ingestion_token_shown",
    ),
    path(
        "ingestion-tokens/<uuid:token_id>/revoke/",
        ingestion_views.ingestion_token_revoke_view,
        name="ingestion_token_revoke",
    ),
    path("charts/traffic.json", chart_views.traffic_json, name="traffic_json"),
    path(
        "clients/<slug:client_id>/activity/",
        chart_views.client_activity,
        name="client_activity",
    ),
]
