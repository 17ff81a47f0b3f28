"""Analytics pages and the log-ingestion API, under /analytics/ (URL names `analytics:…`)."""

from __future__ import annotations

from django.urls import path

from . import chart_views

app_name = "analytics"

urlpatterns: list = [
    path("charts/traffic.json", chart_views.traffic_json, name="traffic_json"),
    path(
        "clients/<slug:client_id>/activity/",
        chart_views.client_activity,
        name="client_activity",
    ),
]
