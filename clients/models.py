from __future__ import annotations

import ipaddress
import re
import secrets
import string
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import (
    MaxLengthValidator,
    MaxValueValidator,
    MinValueValidator,
    RegexValidator,
)
from django.db import models
from django.utils import timezone

from base.text import validate_multi_line, validate_single_line

# Without anchors (the URL converter reuses it); SCOPE_NAME_RE matches the whole string:
# `\Z`, not `$`, which also matches before a final newline ("x:y\n" is not a scope name).
SCOPE_NAME_PATTERN = r"[a-z][a-z0-9_-]*(?:[:.][a-z0-9_*-]+)*"
SCOPE_NAME_RE = re.compile(rf"\A{SCOPE_NAME_PATTERN}\Z")
SCOPE_NAME_MAX_LENGTH = 100
# A TextField's max_length only sizes the widget; the validator is what refuses more.
CLIENT_DESCRIPTION_MAX_LENGTH = 2000


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


validate_scope_name = RegexValidator(
    SCOPE_NAME_RE,
    "Use lower-case letters, digits, '-', '_' and ':' or '.' separators, e.g. orders:read.",
)

AUDIENCE_MAX_LENGTH = 200


def validate_audiences(value: list) -> None:
    """Each `aud` value is one printable token: no spaces, no control characters."""
    if not isinstance(value, list) or not all(isinstance(entry, str) for entry in value):
        raise ValidationError("Audiences must be a list of strings.")
    bad = [entry for entry in value if not entry or not entry.isprintable() or " " in entry]
    if bad:
        shown = ", ".join(repr(entry) for entry in bad[:3])
        raise ValidationError(f"Audiences cannot be empty or hold spaces or controls: {shown}")
    if any(len(entry) > AUDIENCE_MAX_LENGTH for entry in value):
        raise ValidationError(f"An audience can be at most {AUDIENCE_MAX_LENGTH} characters long.")


class ClientQuerySet(models.QuerySet):
    def active(self) -> ClientQuerySet:
        return self.filter(status=Client.Status.ACTIVE)

    def disabled(self) -> ClientQuerySet:
        return self.filter(status=Client.Status.DISABLED)


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
    name = models.CharField(max_length=100, validators=[validate_single_line])
    description = models.TextField(
        blank=True,
        validators=[validate_multi_line, MaxLengthValidator(CLIENT_DESCRIPTION_MAX_LENGTH)],
    )
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
    denied_networks = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_networks],
        help_text="CIDRs refused even inside the allowed networks (e.g. blocked from an alert).",
    )
    audiences = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_audiences],
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
            "denied_networks": list(self.denied_networks),
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
        validators=[validate_scope_name],
    )
    description = models.CharField(max_length=300, blank=True, validators=[validate_single_line])
    owning_team = models.CharField(max_length=100, blank=True, validators=[validate_single_line])
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
    reason = models.CharField(max_length=300, blank=True, validators=[validate_single_line])

    class Meta:
        ordering = ["scope__name"]
        constraints = [
            models.UniqueConstraint(fields=["client", "scope"], name="unique_client_scope")
        ]

    def __str__(self) -> str:
        return f"{self.client} → {self.scope}"
