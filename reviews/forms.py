from __future__ import annotations

from datetime import UTC, datetime, time

from django import forms
from django.utils import timezone

from clients.models import Client

from .models import CampaignItem, Finding, ReviewCampaign


class MatrixFilterForm(forms.Form):
    environment = forms.ChoiceField(
        required=False, choices=[("", "Any environment"), *Client.Environment.choices]
    )
    team = forms.ChoiceField(required=False, choices=[("", "Any team")])
    sensitive = forms.BooleanField(required=False, label="Sensitive scopes only")
    # Not on the form: the client and scope pages' export links narrow to one of them.
    client = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    scope = forms.CharField(required=False, max_length=100, widget=forms.HiddenInput)

    def __init__(self, *args, teams: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [("", "Any team"), *[(t, t) for t in teams]]

    def query(self) -> dict:
        if not self.is_valid():
            return {}
        return {
            "environment": self.cleaned_data["environment"],
            "team": self.cleaned_data["team"],
            "sensitive_only": self.cleaned_data["sensitive"],
            "client_id": self.cleaned_data["client"],
            "scope": self.cleaned_data["scope"],
        }


class FindingFilterForm(forms.Form):
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *Finding.Status.choices], initial="open"
    )
    kind = forms.ChoiceField(required=False, choices=[("", "Any kind"), *Finding.Kind.choices])
    client = forms.CharField(required=False, max_length=64, label="Client id")
    scope = forms.CharField(required=False, max_length=100)

    def query(self) -> dict:
        if not self.is_valid():
            return {"status": "open"}
        data = self.cleaned_data
        return {
            "status": data["status"],
            "kind": data["kind"],
            "client_id": data["client"].strip(),
            "scope": data["scope"].strip(),
        }


class ArchiveForm(forms.Form):
    reason = forms.CharField(max_length=300, help_text="Why this is a known exception.")
    as_rule = forms.BooleanField(
        required=False, label="Also archive future findings like this one (archive rule)"
    )


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=100, initial="Quarterly access review")
    selection = forms.ChoiceField(
        choices=ReviewCampaign.Selection.choices, label="Grants to review"
    )
    environment = forms.ChoiceField(
        required=False,
        choices=[("", "—"), *Client.Environment.choices],
        help_text="For “One environment”.",
    )
    team = forms.ChoiceField(
        required=False, choices=[("", "—")], help_text="For “Scopes of one team”."
    )
    deadline = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Decisions are open until the end of this day (UTC).",
    )
    recurrence = forms.ChoiceField(
        required=False, choices=ReviewCampaign.Recurrence.choices, label="Repeat"
    )
    no_response_policy = forms.ChoiceField(
        choices=ReviewCampaign.Policy.choices,
        label="At the deadline, undecided grants",
        initial=ReviewCampaign.Policy.KEEP,
    )
    fallback_reviewer = forms.ModelChoiceField(
        queryset=None,
        help_text="Reviews the grants of clients whose owner email is no console user's.",
    )

    def __init__(self, *args, teams: list[str], reviewers, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [("", "—"), *[(t, t) for t in teams]]
        self.fields["fallback_reviewer"].queryset = reviewers
        self.fields["fallback_reviewer"].label_from_instance = _user_label

    def clean(self):
        data = super().clean()
        selection = data.get("selection")
        for kind, field in (("environment", "environment"), ("team", "team")):
            if selection == kind and not data.get(field):
                self.add_error(field, f"Choose the {field} to review.")
        deadline = data.get("deadline")
        if deadline and deadline < timezone.now().date():
            self.add_error("deadline", "The deadline must be today or later.")
        return data

    def selection_value(self) -> str:
        selection = self.cleaned_data["selection"]
        return self.cleaned_data.get(selection, "") if selection in ("environment", "team") else ""

    def deadline_at(self) -> datetime:
        """The end of the chosen day in UTC."""
        return datetime.combine(self.cleaned_data["deadline"], time(23, 59), tzinfo=UTC)


def _user_label(user) -> str:
    return f"{user.get_username()} <{user.email}>" if user.email else user.get_username()


class DecisionForm(forms.Form):
    items = forms.ModelMultipleChoiceField(
        queryset=CampaignItem.objects.none(),
        error_messages={"required": "Select at least one grant to decide."},
    )
    decision = forms.ChoiceField(choices=CampaignItem.Decision.choices)
    justification = forms.CharField(
        max_length=500,
        error_messages={"required": "Say why: a justification is required."},
    )

    def __init__(self, *args, campaign: ReviewCampaign, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["items"].queryset = campaign.items.all()
