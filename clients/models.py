from __future__ import annotations

import ipaddress
import re
import secrets
import string
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

SCOPE_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]*(?:[:.][a-z0-9_*-]+)*$")
SCOPE_NAME_MAX_LENGTH = 100


CLIENT_ID_ALPHABET = string.ascii_letters + string.digits


def new_client_id() -> str:
    """24 alphanumeric characters (~143 bits): public, but not guessable.

    Alphanumeric only, so an id never starts with "-" (read as an option by curl -u and
    by command-line parsers) and needs no escaping anywhere.
    """
    return "".join(secrets.choice(CLIENT_ID_ALPHABET) for _ in range(24))


def validate_networks(value: list) -> None:
    """Each entry must be an IPv4 or IPv6 network in CIDR notation (a bare address is /32)."""
    if not isinstance(value, list):
        raise ValidationError("Allowed networks must be a list of CIDRs.")
    for entry in value:
        try:
            ipaddress.ip_network(str(entry), strict=False)
        except ValueError as exc:
            raise ValidationError(f"{entry!r} is not a valid network (e.g. 10.0.0.0/8).") from exc


class ClientQuerySet(models.QuerySet):
    def active(self) -> ClientQuerySet:
        return self.filter(status=Client.Status.ACTIVE)


class Client(models.Model):
    """A machine client of the token service (RFC 6749 §2, confidential client)."""

    class Environment(models.TextChoices):
        DEVELOPMENT = "development", "Development"
        STAGING = "staging", "Staging"
        PRODUCTION = "production", "Production"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        DISABLED = "disabled", "Disabled"

    client_id = models.CharField(
        max_length=64,
        unique=True,
        default=new_client_id,
        editable=False,
        help_text="Public identifier (RFC 6749 §2.2).",
    )
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    owner_email = models.EmailField(blank=True, help_text="Who gets told about this client.")
    environment = models.CharField(
        max_length=16, choices=Environment.choices, default=Environment.DEVELOPMENT
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    access_token_lifetime = models.PositiveIntegerField(
        default=3600,
        validators=[MinValueValidator(60), MaxValueValidator(86400)],
        help_text="Seconds an access token stays valid (60–86400).",
    )
    allowed_networks = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_networks],
        help_text="CIDRs the client may call from; empty means any address.",
    )
    audiences = models.JSONField(
        default=list,
        blank=True,
        help_text="`aud` of its access tokens (RFC 9068 §3); empty means the deployment default.",
    )
    can_introspect = models.BooleanField(
        default=False,
        help_text="May call the introspection endpoint for any token (RFC 7662 §2.1).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True, help_text="Last successful token.")

    objects = ClientQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    def scope_names(self) -> list[str]:
        return sorted(grant.scope.name for grant in self.grants.select_related("scope"))

    def audit_fields(self) -> dict:
        """The client's fields as the audit trail records them (no secrets here to leave out)."""
        return {
            "client_id": self.client_id,
            "name": self.name,
            "description": self.description,
            "owner_email": self.owner_email,
            "environment": self.environment,
            "status": self.status,
            "access_token_lifetime": self.access_token_lifetime,
            "allowed_networks": list(self.allowed_networks),
            "audiences": list(self.audiences),
            "can_introspect": self.can_introspect,
        }


class ClientSecretQuerySet(models.QuerySet):
    def valid(self, now: datetime | None = None) -> ClientSecretQuerySet:
        """Secrets that authenticate: not revoked and not expired."""
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ClientSecret(models.Model):
    """A client secret, stored only as HMAC-SHA256(pepper, secret). See clients/secrets.py."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="secrets")
    secret_hash = models.CharField(max_length=64, unique=True, help_text="Hex HMAC-SHA256.")
    hint = models.CharField(max_length=32, help_text="Prefix and last 4 characters.")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = ClientSecretQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.hint

    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    def is_valid(self, now=None) -> bool:
        return not self.is_revoked() and not self.is_expired(now)


class Scope(models.Model):
    """A custom scope (RFC 6749 §3.3) that resource servers check."""

    name = models.CharField(
        max_length=SCOPE_NAME_MAX_LENGTH,
        unique=True,
        validators=[
            RegexValidator(
                SCOPE_NAME_RE,
                "Use lower-case letters, digits, '-', '_' and ':' or '.' separators, "
                "e.g. orders:read.",
            )
        ],
    )
    description = models.CharField(max_length=300, blank=True)
    owning_team = models.CharField(max_length=100, blank=True)
    sensitive = models.BooleanField(
        default=False, help_text="Grants of sensitive scopes deserve a second look."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def audit_fields(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "owning_team": self.owning_team,
            "sensitive": self.sensitive,
        }


class ScopeGrant(models.Model):
    """A client may request a scope."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="grants")
    scope = models.ForeignKey(Scope, on_delete=models.PROTECT, related_name="grants")
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    granted_at = models.DateTimeField(auto_now_add=True)
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["scope__name"]
        constraints = [
            models.UniqueConstraint(fields=["client", "scope"], name="unique_client_scope")
        ]

    def __str__(self) -> str:
        return f"{self.client} → {self.scope}"


# Secret lifecycle (issue 4) ------------------------------------------------------------

# Defaults for environments without a stored policy row (the data migration writes them).
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


class SecretFinding(models.Model):
    """Something the stale-secret scan (clients/lifecycle.py) flagged; open until fixed."""

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

    def is_open(self) -> bool:
        return self.state == self.State.OPEN


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
