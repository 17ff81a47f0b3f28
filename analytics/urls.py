"""Analytics pages and the log-ingestion API, under /analytics/ (URL names `analytics:…`)."""

from __future__ import annotations

from django.urls import path

from . import chart_views, views

app_name = "analytics"

urlpatterns: list = [
    path("events/", views.event_list, name="events"),
    path("events/tail/", views.event_tail, name="events_tail"),
    path("events/export.csv", views.event_export_csv, name="events_csv"),
    path("events/export.ndjson", views.event_export_ndjson, name="events_ndjson"),
    path("charts/traffic.json", chart_views.traffic_json, name="traffic_json"),
    path(
        "clients/<slug:client_id>/activity/",
        chart_views.client_activity,
        name="client_activity",
    ),
]
