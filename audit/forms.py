from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.db.models import QuerySet
from django.utils import timezone

from base.forms import ConsoleForm

from .models import AdminAction


def _distinct(field: str) -> list[tuple[str, str]]:
    values = AdminAction.objects.order_by(field).values_list(field, flat=True).distinct()
    return [("", "Any")] + [(value, value) for value in values]


class AuditFilterForm(ConsoleForm):
    """Filters for the audit page and its CSV export; both read the same query string."""

    actor = forms.CharField(required=False, max_length=150, label="Actor")
    action = forms.ChoiceField(required=False, label="Action")
    target_type = forms.ChoiceField(required=False, label="Target type")
    target_id = forms.CharField(required=False, max_length=128, label="Target id")
    date_from = forms.DateField(required=False, label="From")
    date_to = forms.DateField(required=False, label="To")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Choices come from the trail itself, so a new action code needs no code change.
        self.fields["action"].choices = _distinct("action")
        self.fields["target_type"].choices = _distinct("target_type")

    def clean(self) -> dict:
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "'To' must not be before 'From'.")
        return cleaned

    def is_filtered(self) -> bool:
        return any(getattr(self, "cleaned_data", {}).values())

    def apply(self, queryset: QuerySet[AdminAction]) -> QuerySet[AdminAction]:
        """Narrow `queryset` by every field that validated; invalid fields are ignored."""
        self.is_valid()
        data = self.cleaned_data
        if data.get("actor"):
            queryset = queryset.filter(actor_label__icontains=data["actor"].strip())
        if data.get("action"):
            queryset = queryset.filter(action=data["action"])
        if data.get("target_type"):
            queryset = queryset.filter(target_type=data["target_type"])
        if data.get("target_id"):
            queryset = queryset.filter(target_id=data["target_id"].strip())
        # Whole days in the current time zone; a range on created_at keeps its index usable.
        if data.get("date_from"):
            queryset = queryset.filter(created_at__gte=_day_start(data["date_from"]))
        if data.get("date_to"):
            end = _day_start(data["date_to"]) + timedelta(days=1)
            queryset = queryset.filter(created_at__lt=end)
        return queryset


def _day_start(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))
