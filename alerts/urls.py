"""Alert pages under /alerts/ (URL names `alerts:…`)."""

from __future__ import annotations

app_name = "alerts"

urlpatterns: list = []
