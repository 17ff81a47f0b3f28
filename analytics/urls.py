"""Analytics pages and the log-ingestion API, under /analytics/ (URL names `analytics:…`)."""

from __future__ import annotations

app_name = "analytics"

urlpatterns: list = []
