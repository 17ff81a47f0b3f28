from __future__ import annotations

from django import forms

from clients.models import Client

from .models import Finding


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
