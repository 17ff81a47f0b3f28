"""The events explorer's query string, validated: filters, time range and page cursor."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from base.http import IPAddress, IPNetwork
from base.text import validate_single_line

from .explorer import Cursor, EventFilters
from .models import TokenEvent

# Preset time ranges: the query-string value, its label and its length.
RANGE_PRESETS = {
    "1h": ("Last hour", timedelta(hours=1)),
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
}
# Offered in the source field's suggestions; any other name is accepted.
KNOWN_SOURCES = ("keyward", "keycloak", "auth0", "okta")


class _ParsedField(forms.Field):
    """A short text that parses into a value; `parse` raises ValueError when it does not."""

    max_length = 80
    message = "Enter a valid value."

    def to_python(self, value):
        text = (value or "").strip()
        if not text:
            return None
        if len(text) > self.max_length:
            raise ValidationError(f"Enter at most {self.max_length} characters.", code="max_length")
        try:
            return self.parse(text)
        except ValueError:
            raise ValidationError(self.message, code="invalid") from None

    def parse(self, text: str):
        raise NotImplementedError


class IsoDateTimeField(_ParsedField):
    """An ISO 8601 time (`2026-12-03T08:30`, `…:12.5Z`, `…+02:00`, or a bare date) in UTC.

    A time without an offset is UTC, which is what the page shows, so a time copied from
    a row filters on that row."""

    max_length = 40
    message = "Enter an ISO 8601 time such as 2026-12-03T08:30:00Z."

    def parse(self, text: str) -> datetime:
        moment = datetime.fromisoformat(text)
        if timezone.is_naive(moment):
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)


class NetworkField(_ParsedField):
    """One IPv4 or IPv6 address, or a network in CIDR notation (host bits may be set)."""

    max_length = 64
    message = (
        "Enter an IP address (10.1.2.3, 2001:db8::1) or a network (10.0.0.0/8, 2001:db8::/32)."
    )

    def parse(self, text: str) -> IPAddress | IPNetwork:
        if "/" in text:
            return ipaddress.ip_network(text, strict=False)
        return ipaddress.ip_address(text)


class CursorField(_ParsedField):
    """A page position as the page links write it (see `Cursor`)."""

    message = "This page link is damaged; start again from the newest events."
    widget = forms.HiddenInput

    def parse(self, text: str) -> Cursor:
        return Cursor.decode(text)


def _text(label: str, max_length: int, **kwargs) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        max_length=max_length,
        validators=[validate_single_line],
        **kwargs,
    )


def _with_any(choices) -> list[tuple[str, str]]:
    return [("", "Any"), *choices]


class EventFilterForm(forms.Form):
    """Filters of the events explorer, its live tail and its exports (one query string).

    `from` and `to` are Python keywords, so those two fields are added in __init__."""

    range = forms.ChoiceField(
        label="Time range",
        required=False,
        choices=[("", "Any time")] + [(key, label) for key, (label, _) in RANGE_PRESETS.items()],
    )
    client_id = _text("Client ID", 200)
    outcome = forms.ChoiceField(
        label="Outcome", required=False, choices=_with_any(TokenEvent.Outcome.choices)
    )
    reason = _text("Reason", 32, help_text="A reason code, e.g. bad_secret.")
    ip = NetworkField(label="Source IP or CIDR", required=False)
    endpoint = forms.ChoiceField(
        label="Endpoint", required=False, choices=_with_any(TokenEvent.Endpoint.choices)
    )
    source = _text("Source", 64, help_text="keyward, keycloak, auth0, okta or an ingested name.")
    jti = _text("Token ID (jti)", 64)
    before = CursorField(required=False)
    after = CursorField(required=False)
    tail = forms.BooleanField(required=False, label="Live tail")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Inserted first, so the time fields lead the form.
        time_fields = {
            "from": IsoDateTimeField(label="From (UTC)", required=False),
            "to": IsoDateTimeField(label="To (UTC)", required=False),
        }
        self.fields = {**time_fields, **self.fields}

    def clean(self) -> dict:
        cleaned = super().clean()
        start, end = cleaned.get("from"), cleaned.get("to")
        if start and end and start > end:
            self.add_error("to", "'To' must not be before 'From'.")
        if cleaned.get("before") and cleaned.get("after"):
            raise ValidationError("A page link has either 'before' or 'after', not both.")
        return cleaned

    def filters(self, *, now: datetime | None = None) -> EventFilters:
        """The validated filters; a preset range counts back from `now`. Explicit
        from/to win over a preset."""
        data = self.cleaned_data
        start, end = data.get("from"), data.get("to")
        if data.get("range") and not (start or end):
            start = (now or timezone.now()) - RANGE_PRESETS[data["range"]][1]
        return EventFilters(
            start=start,
            end=end,
            client_id=data.get("client_id", ""),
            outcome=data.get("outcome", ""),
            reason=data.get("reason", ""),
            network=data.get("ip"),
            endpoint=data.get("endpoint", ""),
            source=data.get("source", ""),
            jti=data.get("jti", ""),
        )

    def is_filtered(self) -> bool:
        """Anything but the cursor and the tail switch narrows the result."""
        data = getattr(self, "cleaned_data", {})
        return any(
            data.get(name) for name in self.fields if name not in {"before", "after", "tail"}
        )
