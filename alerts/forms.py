"""Forms of the alert pages: inbox filters, triage, responses, suppressions, settings,
destinations. Forms validate; services write."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib.auth.models import User
from django.utils import timezone

from base.forms import ConsoleForm
from base.text import validate_single_line
from clients.models import Client

from .detections import CATALOGUE
from .models import ENVIRONMENT_CHOICES, Alert, AlertDestination, Severity

RULE_CHOICES = [(d.rule, d.title) for d in CATALOGUE]
SINCE_CHOICES = [
    ("", "Any time"),
    ("1h", "Last hour"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
]
SINCE = {
    "1h": timedelta(hours=1),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DURATION_CHOICES = [("1h", "1 hour"), ("24h", "24 hours"), ("7d", "7 days"), ("30d", "30 days")]


def _select(label: str) -> forms.Select:
    return forms.Select(attrs={"aria-label": label})


class AlertFilterForm(ConsoleForm):
    """The inbox's query string. Invalid values are ignored, not errors."""

    status = forms.ChoiceField(
        required=False,
        choices=[("", "Active"), *Alert.Status.choices, ("all", "Any status")],
        widget=_select("Status"),
    )
    severity = forms.ChoiceField(
        required=False,
        choices=[("", "Any severity"), *Severity.choices],
        widget=_select("Severity"),
    )
    rule = forms.ChoiceField(
        required=False, choices=[("", "Any rule"), *RULE_CHOICES], widget=_select("Rule")
    )
    environment = forms.ChoiceField(
        required=False,
        choices=[("", "Any environment"), *Client.Environment.choices],
        widget=_select("Environment"),
    )
    assignee = forms.ChoiceField(required=False, choices=[], widget=_select("Assignee"))
    since = forms.ChoiceField(required=False, choices=SINCE_CHOICES, widget=_select("Last seen"))
    client = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "client_id", "aria-label": "Client"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        users = User.objects.filter(is_active=True).order_by("username")
        self.fields["assignee"].choices = [
            ("", "Anyone"),
            ("me", "Assigned to me"),
            ("none", "Unassigned"),
            *((u.username, u.username) for u in users),
        ]

    def value(self, name: str) -> str:
        if not hasattr(self, "cleaned_data"):
            self.is_valid()
        return self.cleaned_data.get(name) or ""

    def query(self) -> dict:
        names = ("status", "severity", "rule", "environment", "assignee", "since", "client")
        return {name: self.value(name) for name in names if self.value(name)}

    def since_time(self):
        delta = SINCE.get(self.value("since"))
        return timezone.now() - delta if delta else None


class BulkForm(ConsoleForm):
    action = forms.ChoiceField(choices=[("acknowledge", "Acknowledge"), ("resolve", "Resolve")])
    close_reason = forms.ChoiceField(required=False, choices=Alert.CloseReason.choices)
    alerts = forms.ModelMultipleChoiceField(queryset=Alert.objects.all())

    def clean(self) -> dict:
        data = super().clean()
        if data.get("action") == "resolve" and not data.get("close_reason"):
            raise forms.ValidationError("Choose why the alerts are resolved.")
        return data


class ResolveForm(ConsoleForm):
    close_reason = forms.ChoiceField(
        choices=[c for c in Alert.CloseReason.choices if c[0] != "automatic"]
    )
    comment = forms.CharField(required=False, max_length=4000, widget=forms.Textarea({"rows": 2}))


class CommentForm(ConsoleForm):
    text = forms.CharField(max_length=4000, widget=forms.Textarea({"rows": 2}), label="Comment")


class AssignForm(ConsoleForm):
    assignee = forms.ModelChoiceField(
        queryset=User.objects.filter(is_active=True).order_by("username"),
        required=False,
        to_field_name="username",
        empty_label="Nobody",
    )


class SuppressForm(ConsoleForm):
    by = forms.ChoiceField(
        choices=[("client", "This client"), ("network", "This network"), ("rule", "This rule")],
        label="Suppress this rule for",
    )
    duration = forms.ChoiceField(choices=DURATION_CHOICES, initial="24h")
    reason = forms.CharField(max_length=300, validators=[validate_single_line])

    def expiry_delta(self) -> timedelta:
        return {
            "1h": timedelta(hours=1),
            "24h": timedelta(days=1),
            "7d": timedelta(days=7),
            "30d": timedelta(days=30),
        }[self.cleaned_data["duration"]]


class SuppressionForm(ConsoleForm):
    rule = forms.ChoiceField(required=False, choices=[("", "Any rule"), *RULE_CHOICES])
    client_id = forms.CharField(required=False, max_length=200, label="Client (client_id)")
    network = forms.CharField(required=False, max_length=50, label="Network (CIDR)")
    duration = forms.ChoiceField(choices=DURATION_CHOICES, initial="24h")
    reason = forms.CharField(max_length=300, validators=[validate_single_line])

    def expires_at(self):
        return timezone.now() + SuppressForm.expiry_delta(self)


class DetectionSettingForm(ConsoleForm):
    rule = forms.ChoiceField(choices=RULE_CHOICES, widget=forms.HiddenInput)
    environment = forms.ChoiceField(choices=ENVIRONMENT_CHOICES, required=False)
    enabled = forms.BooleanField(required=False)
    threshold = forms.IntegerField(min_value=1, max_value=1_000_000)
    window_seconds = forms.IntegerField(min_value=60, max_value=3600, label="Window (s)")
    minimum = forms.IntegerField(min_value=1, max_value=1_000_000)
    severity = forms.ChoiceField(choices=Severity.choices)


class DestinationForm(ConsoleForm):
    name = forms.CharField(max_length=100, validators=[validate_single_line])
    kind = forms.ChoiceField(choices=AlertDestination.Kind.choices)
    target = forms.CharField(
        max_length=500, help_text="Email addresses (comma-separated) or the webhook's URL."
    )
    min_severity = forms.ChoiceField(
        choices=Severity.choices, initial=Severity.HIGH, label="Minimum severity"
    )
    environments = forms.MultipleChoiceField(
        label="Environments (none ticked: all)",
        required=False,
        choices=Client.Environment.choices,
        widget=forms.CheckboxSelectMultiple,
    )
