"""Forms for the secret-lifecycle pages: policy, findings filter, rotation grace."""

from __future__ import annotations

import re
from datetime import timedelta

from django import forms
from django.utils import timezone

from base.forms import ConsoleForm
from clients.models import Client

from .models import SecretFinding
from .services import MAX_ROTATION_GRACE

GRACE_CHOICES = [
    ("0", "Immediately"),
    ("1h", "1 hour"),
    ("24h", "24 hours"),
    ("7d", "7 days"),
    ("30d", "30 days"),
    ("custom", "Custom"),
]
DEFAULT_GRACE = "24h"
_DURATION_RE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_grace(text: str) -> timedelta:
    """'0', '30m', '1h', '24h', '7d' → timedelta; ValueError on anything else or > 90 days."""
    text = text.strip().lower()
    if text == "0":
        return timedelta(0)
    match = _DURATION_RE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration; use 0, 30m, 1h, 24h or 7d.")
    grace = timedelta(**{_UNITS[match[2]]: int(match[1])})
    if grace > MAX_ROTATION_GRACE:
        raise ValueError("The old secret can stay valid for at most 90 days.")
    return grace


class SecretPolicyForm(ConsoleForm):
    environment = forms.ChoiceField(choices=Client.Environment.choices, widget=forms.HiddenInput)
    max_secret_age_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=3650,
        label="Maximum secret age (days)",
        help_text="New secrets expire after this many days. Empty: no limit.",
    )
    auto_revoke_replaced_after_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=365,
        label="Auto-revoke replaced secrets after (days)",
        help_text="Revoke a secret still unused this long after a rotation. Empty: off.",
    )
    auto_disable_dormant_after_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=3650,
        label="Auto-disable dormant clients after (days)",
        help_text="Disable a client with no successful token this long. Empty: off.",
    )

    @classmethod
    def for_policy(cls, policy, **kwargs) -> SecretPolicyForm:
        initial = {"environment": policy.environment} | policy.audit_fields()
        return cls(initial=initial, prefix=policy.environment, **kwargs)


class FindingFilterForm(ConsoleForm):
    kind = forms.ChoiceField(
        choices=[("", "All findings"), *SecretFinding.Kind.choices], required=False
    )
    environment = forms.ChoiceField(
        choices=[("", "All environments"), *Client.Environment.choices], required=False
    )

    def value(self, name: str) -> str:
        return self.cleaned_data.get(name) or "" if self.is_valid() else ""


class RotateForm(ConsoleForm):
    grace_choice = forms.ChoiceField(
        choices=GRACE_CHOICES,
        initial=DEFAULT_GRACE,
        widget=forms.RadioSelect,
        label="How long does the current secret stay valid?",
    )
    custom_hours = forms.DecimalField(
        required=False,
        min_value=0,
        max_value=90 * 24,
        decimal_places=2,
        label="Custom: hours",
        help_text="Up to 2160 hours (90 days).",
    )
    # A text input in ISO 8601, not datetime-local: the browser would show that one in the
    # viewer's locale (12/03/2026, 02:00 PM) while every other time in Keyward is ISO UTC.
    custom_until = forms.DateTimeField(
        required=False,
        label="Custom: or until (UTC)",
        widget=forms.TextInput(
            attrs={"placeholder": "2026-12-31T18:00Z", "spellcheck": "false", "inputmode": "text"}
        ),
        help_text="ISO 8601, e.g. 2026-12-31T18:00 (UTC) or 2026-12-31T19:00+01:00.",
        error_messages={"invalid": "Enter a date and time in ISO 8601, e.g. 2026-12-31T18:00Z."},
    )
    confirm_immediate = forms.BooleanField(
        required=False,
        label="I understand: consumers still using the current secret stop getting tokens now.",
    )

    def clean(self) -> dict:
        data = super().clean()
        choice = data.get("grace_choice")
        if not choice:
            return data
        data["grace"] = parse_grace(choice) if choice != "custom" else self._custom_grace(data)
        if data["grace"] == timedelta(0) and not data.get("confirm_immediate"):
            self.add_error(
                "confirm_immediate",
                "Rotating immediately cuts off every consumer still using the current secret. "
                "Tick the box to confirm, or choose a grace period.",
            )
        return data

    def _custom_grace(self, data: dict) -> timedelta:
        hours, until = data.get("custom_hours"), data.get("custom_until")
        if (hours is None) == (until is None):
            raise forms.ValidationError("For a custom time, give either hours or a date and time.")
        grace = timedelta(hours=float(hours)) if hours is not None else until - timezone.now()
        if grace < timedelta(0):
            raise forms.ValidationError("That time is in the past.")
        if grace > MAX_ROTATION_GRACE:
            raise forms.ValidationError("The old secret can stay valid for at most 90 days.")
        return grace
