"""Console accounts' state beyond Django's user: a password that must be changed."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class PasswordChangeRequired(models.Model):
    """The user logs in with a password an admin saw (reset or generated) and must choose
    their own before anything else; the login flow reads this row (dashboard/signals.py)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="password_change_required",
    )
    required_since = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.user} must change their password"
