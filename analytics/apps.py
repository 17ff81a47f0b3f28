from __future__ import annotations

from django.apps import AppConfig
from django.db.backends.signals import connection_created


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        from .explorer import sqlite_functions_register

        # The explorer's network filter on SQLite is a function of every connection.
        connection_created.connect(sqlite_functions_register, dispatch_uid="keyward_ip_within")
