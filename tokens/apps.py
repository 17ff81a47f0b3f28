from __future__ import annotations

from django.apps import AppConfig


class TokensConfig(AppConfig):
    name = "tokens"
    verbose_name = "Token service"

    def ready(self) -> None:
        from clients.signals import client_changed

        from .client_cache import client_cache_drop

        # Same-process immediacy; other processes see the change when their entry expires.
        client_changed.connect(client_cache_drop, dispatch_uid="tokens.client_cache_drop")
