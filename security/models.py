"""The secret lifecycle's rows: per-environment policies, scan findings, sent emails.

The tables were created by the clients app and moved here with their data; see
security/migrations/0001_initial.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from clients.models import Client, ClientSecret

# Defaults for environments without a stored policy row (clients/migrations/0002 wrote the
# rows a fresh database starts with).
DEFAULT_MAX_SECRET_AGE_DAYS = {"production": 90, "staging": 180, "development": None}
POLICY_CACHE_SECONDS = 60


class SecretPolicy(models.Model):
    """Secret rules for one environment: maximum age and the optional auto-actions."""

    environment = models.CharField(max_length=16, choices=Client.Environment.choices, unique=True)
    max_secret_age_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text="New secrets expire this many days after creation; empty means no limit.",
    )
    auto_revoke_replaced_after_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text="Revoke a secret still unused this many days after a newer one replaced it.",
    )
    auto_disable_dormant_after_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text="Disable a client with no successful token for this many days.",
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["environment"]
        verbose_name_plural = "secret policies"

    def __str__(self) -> str:
        return f"{self.environment} secret policy"

    @staticmethod
    def cache_key(environment: str) -> str:
        return f"keyward:secret-policy:{environment}"

    @classmethod
    def for_environment(cls, environment: str) -> SecretPolicy:
        """The policy for `environment`, cached briefly (every secret creation reads it).

        Falls back to an unsaved row with the defaults, so a database flushed by a test
        or a missing row never blocks creating secrets.
        """
        key = cls.cache_key(environment)
        policy = cache.get(key)
        if policy is None:
            policy = cls.objects.filter(environment=environment).first() or cls(
                environment=environment,
                max_secret_age_days=DEFAULT_MAX_SECRET_AGE_DAYS.get(environment),
            )
            cache.set(key, policy, POLICY_CACHE_SECONDS)
        return policy

    def max_age(self) -> timedelta | None:
        return timedelta(days=self.max_secret_age_days) if self.max_secret_age_days else None

    def expiry_for(self, created_at: datetime) -> datetime | None:
        max_age = self.max_age()
        return created_at + max_age if max_age else None

    def audit_fields(self) -> dict:
        return {
            "max_secret_age_days": self.max_secret_age_days,
            "auto_revoke_replaced_after_days": self.auto_revoke_replaced_after_days,
            "auto_disable_dormant_after_days": self.auto_disable_dormant_after_days,
        }


class SecretFindingQuerySet(models.QuerySet):
    def open(self) -> SecretFindingQuerySet:
        return self.filter(state=SecretFinding.State.OPEN)


class SecretFinding(models.Model):
    """Something the stale-secret scan (security/scan.py) flagged; open until fixed."""

    class Kind(models.TextChoices):
        SECRET_TOO_OLD = "secret_too_old", "Secret older than the policy allows"
        SECRET_EXPIRING = "secret_expiring", "Secret expiring soon"
        SECRET_UNUSED = "secret_unused", "Secret unused for 30 days"
        CLIENT_DORMANT = "client_dormant", "Client with no token for 30 days"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="findings")
    secret = models.ForeignKey(
        ClientSecret,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="findings",
        help_text="Empty for client-level findings (client_dormant).",
    )
    state = models.CharField(max_length=8, choices=State.choices, default=State.OPEN)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when a scan claimed it for the digest email."
    )
    details = models.JSONField(default=dict, blank=True)

    objects = SecretFindingQuerySet.as_manager()

    class Meta:
        ordering = ["-first_seen_at", "-id"]
        constraints = [
            # One open finding per subject. Two constraints because NULL secrets are distinct
            # in a plain unique index; the scan's conditional insert relies on both.
            models.UniqueConstraint(
                fields=["kind", "client", "secret"],
                condition=models.Q(state="open", secret__isnull=False),
                name="unique_open_secret_finding",
            ),
            models.UniqueConstraint(
                fields=["kind", "client"],
                condition=models.Q(state="open", secret__isnull=True),
                name="unique_open_client_finding",
            ),
        ]
        indexes = [
            # secrets_scan: claims open findings nobody was told about yet.
            models.Index(
                fields=["client"],
                condition=models.Q(state="open", notified_at__isnull=True),
                name="finding_unnotified",
            ),
            # Secrets health page: open findings, newest first.
            models.Index(
                fields=["-first_seen_at"],
                condition=models.Q(state="open"),
                name="finding_open_recent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.client_id}/{self.secret_id or '-'} ({self.state})"


class NotificationLogQuerySet(models.QuerySet):
    def failed(self) -> NotificationLogQuerySet:
        return self.filter(status=NotificationLog.Status.FAILED)


class NotificationLog(models.Model):
    """One email Keyward sent or tried to send; failures stay visible to admins."""

    class Kind(models.TextChoices):
        SECRET_ROTATED = "secret_rotated", "Secret rotated"
        SECRET_REVOKED = "secret_revoked", "Secret revoked"
        FINDINGS_DIGEST = "findings_digest", "Findings digest"
        AUTO_ACTION = "auto_action", "Automatic action"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    recipients = models.JSONField(default=list)
    subject = models.CharField(max_length=300)
    body_text = models.TextField(help_text="Rendered when queued, so a retry sends the same.")
    body_html = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    client = models.ForeignKey(
        Client, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )

    objects = NotificationLogQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Secrets health page: failed notifications for admins.
            models.Index(
                fields=["-created_at"],
                condition=models.Q(status="failed"),
                name="notification_failed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {', '.join(self.recipients)} ({self.status})"
