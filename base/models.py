"""Rows behind the console's no-repeat rules (base/once.py): values shown once, and form
tokens already spent. Both are short-lived and purged as new ones are written."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class ShownOnce(models.Model):
    """A value one browser session is shown once (a new secret, a generated password).

    Encrypted (Fernet, key derived from SECRET_KEY), bound to a hash of the session key,
    deleted by the read that shows it, unreadable after base.once.SHOWN_ONCE_SECONDS.
    """

    session_hash = models.CharField(max_length=64, help_text="SHA-256 of the session key.")
    name = models.CharField(max_length=100, help_text="What it is, e.g. client-secret:<id>.")
    ciphertext = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session_hash", "name"], name="unique_shown_once")
        ]

    def __str__(self) -> str:
        return self.name


class FormTokenUse(models.Model):
    """A one-time form token that was submitted, and where its result is (base/once.py)."""

    nonce = models.CharField(max_length=64, unique=True)
    result_url = models.CharField(max_length=500, blank=True)
    used_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return self.nonce
