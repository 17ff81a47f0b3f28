from __future__ import annotations

from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts"

    def ready(self) -> None:
        # analytics (the drain, ingestion) sits below alerts: it announces stored events
        # with a signal and never imports this app.
        from analytics.signals import events_stored

        from .receivers import events_stored as on_events_stored

        events_stored.connect(on_events_stored, dispatch_uid="alerts.evaluate_after_drain")
