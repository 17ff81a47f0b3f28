"""Scope review rows: findings over grants and their usage, archive rules, and applied
least-privilege changes (with what a rollback needs to put the grants back exactly).

Clients and scopes are named by their public identifiers (client_id, scope name), not by
foreign keys: a finding or a change outlives the grant it is about, which is the point.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

ROLLBACK_WINDOW = timedelta(days=30)


class Finding(models.Model):
    """One condition worth a reviewer's look, kept while it holds (idempotent scans)."""

    class Kind(models.TextChoices):
        UNUSED_GRANT = "unused_grant", "Grant unused"
        SENSITIVE_NONPROD = "sensitive_nonprod", "Sensitive scope held outside production"
        INACTIVE_CLIENT = "inactive_client", "Scopes held by a dormant or disabled client"
        NO_REASON = "grant_no_reason", "Grant without a recorded reason"
        NO_OWNER = "client_no_owner", "Client without an owner"
        SCOPE_UNUSED = "scope_unused", "Scope nobody uses"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"
        ARCHIVED = "archived", "Archived"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    client_id = models.CharField(max_length=64, blank=True, help_text="Empty: a scope finding.")
    client_name = models.CharField(max_length=100, blank=True)
    scope = models.CharField(max_length=100, blank=True, help_text="Empty: a client finding.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    evidence = models.JSONField(default=dict)
    opened_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    archived_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    archive_reason = models.CharField(max_length=300, blank=True)
    archive_rule = models.ForeignKey(
        "ArchiveRule", null=True, blank=True, on_delete=models.SET_NULL, related_name="findings"
    )

    class Meta:
        ordering = ["-last_seen_at", "kind", "client_name", "scope"]
        constraints = [
            # The scan's key: one row per condition, reopened rather than duplicated.
            models.UniqueConstraint(fields=["kind", "client_id", "scope"], name="finding_key")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.client_name or ''} {self.scope}".strip()

    def is_open(self) -> bool:
        return self.status == self.Status.OPEN

    def evidence_items(self) -> list[tuple[str, str]]:
        """The evidence as (label, text) for people: lists joined, times to the minute."""
        return [(key.replace("_", " "), _readable(value)) for key, value in self.evidence.items()]


def _readable(value) -> str:
    if value is None:
        return "never"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "none"
    if isinstance(value, str) and len(value) >= 16 and value[4:5] == "-" and value[10:11] == "T":
        return value[:16].replace("T", " ") + " UTC"
    return str(value)


class ArchiveRule(models.Model):
    """A known exception: findings of `kind` matching client and scope (empty = any) are
    archived by the scan with the rule's reason instead of opened."""

    kind = models.CharField(max_length=32, choices=Finding.Kind.choices)
    client_id = models.CharField(max_length=64, blank=True)
    scope = models.CharField(max_length=100, blank=True)
    reason = models.CharField(max_length=300)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["kind", "client_id", "scope"]

    def __str__(self) -> str:
        return f"{self.kind} {self.client_id or '*'} {self.scope or '*'}"

    def matches(self, finding: Finding) -> bool:
        return (
            self.kind == finding.kind
            and self.client_id in ("", finding.client_id)
            and self.scope in ("", finding.scope)
        )


class GrantChange(models.Model):
    """Removed grants, as they were: an applied least-privilege recommendation or a review
    campaign's remove decisions for one client."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client_id = models.CharField(max_length=64)
    client_name = models.CharField(max_length=100)
    # [{"scope", "reason", "granted_at" (ISO), "granted_by_id", "evidence"}]
    removed = models.JSONField(default=list)
    applied_at = models.DateTimeField(default=timezone.now)
    applied_by_label = models.CharField(max_length=200)
    rolled_back_at = models.DateTimeField(null=True, blank=True)
    rolled_back_by_label = models.CharField(max_length=200, blank=True)
    campaign = models.ForeignKey(
        "ReviewCampaign",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="changes",
        help_text="Set when a review campaign's remove decisions made the change.",
    )

    class Meta:
        ordering = ["-applied_at"]

    def __str__(self) -> str:
        return f"{self.client_name}: -{len(self.removed)} scopes"

    def scope_names(self) -> list[str]:
        return [entry["scope"] for entry in self.removed]

    def rollback_until(self):
        return self.applied_at + ROLLBACK_WINDOW

    def can_roll_back(self, now=None) -> bool:
        return self.rolled_back_at is None and (now or timezone.now()) < self.rollback_until()


# Who decided an item nobody answered for by the deadline (the no-response policy).
POLICY_LABEL = "policy"


class ReviewCampaign(models.Model):
    """A periodic access review: every grant of a selection is put to a reviewer, who keeps
    or removes it before the deadline; the no-response policy decides the rest."""

    class Selection(models.TextChoices):
        ALL = "all", "All grants"
        ENVIRONMENT = "environment", "One environment"
        TEAM = "team", "Scopes of one team"
        SENSITIVE = "sensitive", "Sensitive scopes"

    class Recurrence(models.TextChoices):
        NONE = "", "Once"
        QUARTERLY = "quarterly", "Every quarter"
        HALF_YEARLY = "half_yearly", "Every half year"

    class Policy(models.TextChoices):
        KEEP = "keep", "Keep the grant"
        REMOVE = "remove", "Remove the grant"
        RECOMMENDATION = "recommendation", "Follow the recommendation"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    selection = models.CharField(max_length=16, choices=Selection.choices)
    selection_value = models.CharField(
        max_length=100, blank=True, help_text="The environment or team the selection names."
    )
    deadline = models.DateTimeField()
    recurrence = models.CharField(max_length=16, choices=Recurrence.choices, blank=True)
    no_response_policy = models.CharField(max_length=16, choices=Policy.choices)
    fallback_reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Reviews the grants of clients whose owner is not a console user.",
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    created_by_label = models.CharField(max_length=200)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by_label = models.CharField(max_length=200, blank=True)
    # Claimed by a conditional UPDATE (… WHERE reminder_…_at IS NULL): each is mailed once.
    week_reminder_at = models.DateTimeField(null=True, blank=True)
    day_reminder_at = models.DateTimeField(null=True, blank=True)
    previous = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="next_campaign",
        help_text="The recurring campaign this one follows (one successor each).",
    )

    class Meta:
        ordering = ["-deadline", "name"]
        indexes = [
            # campaigns_run (every 15 minutes): the open campaigns, by deadline.
            models.Index(
                fields=["deadline"],
                name="campaign_open_deadline",
                condition=models.Q(status="open"),
            )
        ]

    def __str__(self) -> str:
        return self.name

    def is_open(self) -> bool:
        return self.status == self.Status.OPEN

    def selection_label(self) -> str:
        if self.selection == self.Selection.ENVIRONMENT:
            return f"environment {self.selection_value}"
        if self.selection == self.Selection.TEAM:
            return f"scopes of team {self.selection_value}"
        return self.get_selection_display().lower()

    def is_past_deadline(self, now=None) -> bool:
        return (now or timezone.now()) >= self.deadline


class CampaignItem(models.Model):
    """One grant under review, snapshotted at the start (client, scope, grant and usage
    evidence) so the report stays true after the grant changes or goes."""

    class Decision(models.TextChoices):
        KEEP = "keep", "Keep"
        REMOVE = "remove", "Remove"

    campaign = models.ForeignKey(ReviewCampaign, on_delete=models.CASCADE, related_name="items")
    client_id = models.CharField(max_length=64)
    client_name = models.CharField(max_length=100)
    environment = models.CharField(max_length=16)
    owner_email = models.EmailField(blank=True)
    scope = models.CharField(max_length=100)
    sensitive = models.BooleanField(default=False)
    grant_reason = models.CharField(max_length=300, blank=True)
    granted_at = models.DateTimeField()
    # selectors.GrantUsage.evidence() plus "recency": at the start, refreshed at decision.
    evidence = models.JSONField(default=dict)
    recommendation = models.CharField(max_length=8, choices=Decision.choices)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewer_label = models.CharField(max_length=200)
    decision = models.CharField(max_length=8, choices=Decision.choices, blank=True)
    decided_by_label = models.CharField(
        max_length=200, blank=True, help_text='A username, or "policy" at the deadline.'
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    justification = models.CharField(max_length=500, blank=True)
    grant_gone_at = models.DateTimeField(
        null=True, blank=True, help_text="The grant was removed elsewhere before a decision."
    )
    change = models.ForeignKey(
        GrantChange, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["client_name", "scope"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "client_id", "scope"], name="campaign_item_grant"
            )
        ]
        indexes = [
            # The decision page and reminders: a reviewer's pending items.
            models.Index(
                fields=["campaign", "reviewer"],
                name="campaign_item_pending",
                condition=models.Q(decision="", grant_gone_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.client_name} {self.scope}"

    def is_pending(self) -> bool:
        return not self.decision and self.grant_gone_at is None

    def state_label(self) -> str:
        if self.grant_gone_at is not None:
            return "grant removed elsewhere"
        return self.get_decision_display() if self.decision else "pending"

    def by_policy(self) -> bool:
        return self.decided_by_label == POLICY_LABEL
