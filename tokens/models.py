from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models
from django.utils import timezone

# A retired key stays in the JWKS for the longest token lifetime plus the JWKS cache time,
# so every token it signed can still be verified by a resource server with a cached JWKS.
MAX_TOKEN_LIFETIME_SECONDS = 86400
JWKS_CACHE_SECONDS = 300
RETIRED_KEY_PUBLISHED_FOR = timedelta(seconds=MAX_TOKEN_LIFETIME_SECONDS + JWKS_CACHE_SECONDS)
# Symmetrically, a next key is published this long before it may sign: a
# validator that cached the JWKS just before the key appeared has refetched it by then.
NEXT_KEY_PUBLISH_LEAD = timedelta(seconds=MAX_TOKEN_LIFETIME_SECONDS + JWKS_CACHE_SECONDS)


class SigningKeyQuerySet(models.QuerySet):
    def published(self, now: datetime | None = None) -> SigningKeyQuerySet:
        """Keys the JWKS lists: next, active, and retired within the publication window."""
        cutoff = (now or timezone.now()) - RETIRED_KEY_PUBLISHED_FOR
        return self.filter(
            models.Q(status__in=[SigningKey.Status.NEXT, SigningKey.Status.ACTIVE])
            | models.Q(status=SigningKey.Status.RETIRED, retired_at__gte=cutoff)
        )


class SigningKey(models.Model):
    """A key that signs access tokens (RFC 9068 §2.1), published in the JWKS (RFC 7517).

    Life cycle: next (published, not yet signing) → active (signs) → retired (published
    until every token it signed has expired). At most one key is next and one is active.
    """

    class Algorithm(models.TextChoices):
        RS256 = "RS256", "RS256 (RSA 2048, PKCS#1 v1.5)"
        ES256 = "ES256", "ES256 (ECDSA P-256)"
        EDDSA = "EdDSA", "EdDSA (Ed25519)"

    class Status(models.TextChoices):
        NEXT = "next", "Next"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    kid = models.CharField(max_length=64, unique=True, help_text="RFC 7638 JWK thumbprint.")
    algorithm = models.CharField(max_length=8, choices=Algorithm.choices)
    private_key_encrypted = models.TextField(
        help_text="Fernet token of the PKCS#8 PEM; see tokens/keys.py for the key derivation."
    )
    public_jwk = models.JSONField(help_text="Public JWK as published (kty, kid, alg, use, …).")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.NEXT)
    created_at = models.DateTimeField(default=timezone.now)
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    objects = SigningKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # The token hot path relies on "the" active key; the rotation relies on "the" next.
            models.UniqueConstraint(
                fields=["status"],
                condition=models.Q(status="active"),
                name="one_active_signing_key",
            ),
            models.UniqueConstraint(
                fields=["status"], condition=models.Q(status="next"), name="one_next_signing_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kid} ({self.algorithm}, {self.status})"

    def is_published(self, now: datetime | None = None) -> bool:
        if self.status != self.Status.RETIRED:
            return True
        now = now or timezone.now()
        return self.retired_at is not None and self.retired_at >= now - RETIRED_KEY_PUBLISHED_FOR

    def published_since(self) -> datetime:
        """Next and active keys are in the JWKS from the moment their row exists."""
        return self.created_at

    def promotable_at(self) -> datetime:
        """When this (next) key has been published long enough to start signing."""
        return self.created_at + NEXT_KEY_PUBLISH_LEAD

    def is_promotable(self, now: datetime | None = None) -> bool:
        return self.promotable_at() <= (now or timezone.now())

    def rotation_due_at(self, interval: timedelta) -> datetime:
        """When this (active) key is old enough for the scheduled rotation."""
        return (self.activated_at or self.created_at) + interval

    def unpublish_at(self) -> datetime | None:
        """When a retired key drops out of the JWKS."""
        if self.retired_at is None:
            return None
        return self.retired_at + RETIRED_KEY_PUBLISHED_FOR


class RevokedToken(models.Model):
    """A revoked access token (RFC 7009), denylisted by `jti` until it would expire anyway.

    This table is the denylist's source of truth. Redis holds a copy for the hot path,
    trusted only while its completeness marker is there (tokens.sink.denylist_rebuild).
    """

    jti = models.CharField(max_length=64, unique=True)
    client_id = models.CharField(max_length=64)
    expires_at = models.DateTimeField(help_text="The token's exp; the row is purged after it.")
    revoked_at = models.DateTimeField(default=timezone.now)
    missing_from_redis = models.BooleanField(
        default=False,
        help_text="Revoked while Redis could not be written; cleared by the next rebuild.",
    )

    class Meta:
        ordering = ["-revoked_at"]
        indexes = [
            # purge_expired_revocations deletes by expires_at.
            models.Index(fields=["expires_at"]),
            # verify_denylist asks every few seconds whether any row is flagged.
            models.Index(
                fields=["missing_from_redis"],
                condition=models.Q(missing_from_redis=True),
                name="tokens_revoked_missing_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.jti
