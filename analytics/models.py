"""Analytics rows: ingestion tokens (the event store's tables live beside them)."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone


class IngestionToken(models.Model):
    """A bearer token another system uses to post its logs to the ingest endpoint.

    The token is `kwing_<lookup>_<secret>`: `lookup` finds the row, and only an HMAC of the
    whole token (keyed with KEYWARD_SECRET_PEPPER, as client secrets are) is stored, so the
    table alone cannot be used to ingest. Shown once, when created.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        EXPIRED = "expired", "Expired"
        REVOKED = "revoked", "Revoked"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, help_text="What sends with it, e.g. 'Keycloak prod'.")
    source = models.CharField(
        max_length=64,
        help_text="The source name its events get unless a request names another.",
    )
    lookup = models.CharField(max_length=16, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint})"

    @property
    def hint(self) -> str:
        """What may be shown of the token: its prefix and lookup part."""
        return f"kwing_{self.lookup}_…"

    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @property
    def status(self) -> str:
        if self.is_revoked():
            return self.Status.REVOKED
        if self.is_expired():
            return self.Status.EXPIRED
        return self.Status.ACTIVE
