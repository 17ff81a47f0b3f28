from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class AdminActionQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("The audit trail is append-only")

    def delete(self):
        raise PermissionError("The audit trail is append-only")


class AdminAction(models.Model):
    """One change made from the dashboard, the CLI or the system. Append-only.

    Written by the services in the same transaction as the change it describes.
    `before` and `after` never hold secrets: services pass only safe fields.
    """

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(
        max_length=150, help_text="Username at the time, or 'cli' / 'system'."
    )
    action = models.CharField(max_length=64, db_index=True, help_text="e.g. client.register")
    target_type = models.CharField(max_length=32, db_index=True)
    target_id = models.CharField(max_length=128, db_index=True)
    target_label = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AdminActionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.target_type}:{self.target_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("The audit trail is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("The audit trail is append-only")


class TokenEvent(models.Model):
    """One request to the token service (token, introspection or revocation endpoint)."""

    class Endpoint(models.TextChoices):
        TOKEN = "token", "Token"
        INTROSPECT = "introspect", "Introspection"
        REVOKE = "revoke", "Revocation"

    class Outcome(models.TextChoices):
        SUCCESS = "success", "Success"
        FAILURE = "failure", "Failure"

    class Reason(models.TextChoices):
        OK = "ok", "OK"
        BAD_SECRET = "bad_secret", "Bad secret"
        UNKNOWN_CLIENT = "unknown_client", "Unknown client"
        DISABLED_CLIENT = "disabled_client", "Disabled client"
        EXPIRED_SECRET = "expired_secret", "Expired secret"
        REVOKED_SECRET = "revoked_secret", "Revoked secret"
        IP_NOT_ALLOWED = "ip_not_allowed", "Source IP not allowed"
        INVALID_SCOPE = "invalid_scope", "Invalid scope"
        RATE_LIMITED = "rate_limited", "Rate limited"
        INVALID_REQUEST = "invalid_request", "Invalid request"
        INVALID_CLIENT = "invalid_client", "Invalid client authentication"
        UNSUPPORTED_GRANT_TYPE = "unsupported_grant_type", "Unsupported grant type"
        UNAUTHORIZED = "unauthorized", "Caller not authorized"
        SERVER_ERROR = "server_error", "Server error"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    occurred_at = models.DateTimeField(db_index=True)
    endpoint = models.CharField(max_length=16, choices=Endpoint.choices)
    client_id = models.CharField(max_length=200, blank=True, help_text="As presented.")
    client_known = models.BooleanField(default=False)
    secret_id = models.BigIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    reason = models.CharField(max_length=32, choices=Reason.choices)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    scopes_requested = models.CharField(max_length=1000, blank=True)
    scopes_granted = models.CharField(max_length=1000, blank=True)
    jti = models.CharField(max_length=64, blank=True)
    status_code = models.PositiveSmallIntegerField()
    duration_ms = models.FloatField(default=0)
    source = models.CharField(
        max_length=64, default="keyward", help_text="The token service that recorded it."
    )

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [
            models.Index(fields=["client_id", "-occurred_at"]),
            models.Index(fields=["secret_id", "-occurred_at"]),
        ]

    def __str__(self) -> str:
        return (
            f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.endpoint} {self.client_id} {self.reason}"
        )
