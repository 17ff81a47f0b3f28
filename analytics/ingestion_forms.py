"""The form admins create ingestion tokens with."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import forms
from django.utils import timezone

from base.forms import ConsoleForm

from .ingestion_tokens import source_name_problem

EXPIRY_CHOICES = [
    ("", "Never"),
    ("30", "In 30 days"),
    ("90", "In 90 days"),
    ("365", "In 1 year"),
]


class IngestionTokenForm(ConsoleForm):
    name = forms.CharField(
        max_length=100,
        help_text="What will send with it, e.g. “Keycloak production event listener”.",
    )
    source = forms.CharField(
        max_length=64,
        initial="keycloak",
        help_text="The source its events are shown with, e.g. keycloak-prod, auth0, okta-eu. "
        "A request may name another with ?source=.",
    )
    expires_in_days = forms.ChoiceField(choices=EXPIRY_CHOICES, required=False, label="Expires")

    def clean_source(self) -> str:
        source = self.cleaned_data["source"].strip()
        problem = source_name_problem(source)
        if problem:
            raise forms.ValidationError(problem)
        return source

    def expires_at(self) -> datetime | None:
        days = self.cleaned_data.get("expires_in_days")
        return timezone.now() + timedelta(days=int(days)) if days else None
