"""The least-privilege recommendation for one client: its grants minus the unused ones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from clients.models import Client

from . import selectors
from .scan import unused_after_days


@dataclass(frozen=True)
class Recommendation:
    client: Client
    days: int
    keep: list[selectors.GrantUsage]
    remove: list[selectors.GrantUsage]

    def is_empty(self) -> bool:
        return not self.remove

    def proposed_scopes(self) -> list[str]:
        return [usage.grant.scope.name for usage in self.keep]


def recommendation_for(client: Client, *, now: datetime | None = None) -> Recommendation:
    """Remove every grant unused for KEYWARD_REVIEW_UNUSED_DAYS days (and at least that old)."""
    now = now or timezone.now()
    days = unused_after_days()
    usages = selectors.client_grants_usage(client, now=now)
    remove = [usage for usage in usages if usage.unused_for(days, now)]
    keep = [usage for usage in usages if usage not in remove]
    return Recommendation(client=client, days=days, keep=keep, remove=remove)
