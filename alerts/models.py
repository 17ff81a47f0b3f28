"""Alerts and what surrounds them: per-environment detection settings, the alerts with their
timeline, suppressions, notification destinations and their delivery log.

The rule catalogue itself is code (alerts/detections.py); rows here refer to a rule by its
id, so adding a rule needs no migration.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from clients.models import Client, validate_networks


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


def validate_network(value: str) -> None:
    validate_networks([value] if value else [])


SEVERITY_RANK = {"low": 1, "medium": 2, "high": 3, "critical": 4}
ENVIRONMENT_ANY = ""  # a setting or a route for every environment (and for unknown clients)
ENVIRONMENT_CHOICES = [(ENVIRONMENT_ANY, "All environments"), *Client.Environment.choices]


class DetectionSetting(models.Model):
    """An admin's override of one rule's defaults for one environment (or all of them).

    Lookup order: the client's environment, then the all-environments row, then the
    catalogue's default (alerts.detections.settings_for).
    """

    rule = models.CharField(max_length=40)
    environment = models.CharField(
        max_length=16, choices=ENVIRONMENT_CHOICES, blank=True, default=ENVIRONMENT_ANY
    )
    enabled = models.BooleanField(default=True)
    threshold = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    window_seconds = models.PositiveIntegerField(
        validators=[MinValueValidator(60), MaxValueValidator(3600)],
        help_text="At most an hour: detections only look at recent events.",
    )
    minimum = models.PositiveIntegerField(
        default=1, help_text="Events needed before the rule is judged at all."
    )
    severity = models.CharField(max_length=8, choices=Severity.choices)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["rule", "environment"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "environment"], name="unique_rule_environment")
        ]

    def __str__(self) -> str:
        return f"{self.rule} ({self.environment or 'all environments'})"

    def audit_fields(self) -> dict:
        return {
            "enabled": self.enabled,
            "threshold": self.threshold,
            "window_seconds": self.window_seconds,
            "minimum": self.minimum,
            "severity": self.severity,
        }


class AlertQuerySet(models.QuerySet):
    def active(self) -> AlertQuerySet:
        """Not resolved: open, acknowledged or suppressed (the one per rule and subject)."""
        return self.filter(status__in=Alert.ACTIVE_STATUSES)


class Alert(models.Model):
    """One detection firing for one subject, from first to last matching event.

    At most one active alert per (rule, subject_key), enforced by the database; repeats
    update it. After a quiet period it resolves itself; recurrence opens a new alert that
    links to this one (`previous`), so each closed alert keeps its own close reason and
    timeline.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"
        SUPPRESSED = "suppressed", "Suppressed"

    class CloseReason(models.TextChoices):
        TRUE_POSITIVE = "true_positive", "True positive"
        FALSE_POSITIVE = "false_positive", "False positive"
        BENIGN = "benign", "Benign"
        DUPLICATE = "duplicate", "Duplicate"
        AUTOMATIC = "automatic", "Automatic (quiet period)"

    ACTIVE_STATUSES = ("open", "acknowledged", "suppressed")

    rule = models.CharField(max_length=40, db_index=True)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    subject_key = models.CharField(
        max_length=300, help_text="client:<id>, net:<cidr> or both joined by '|'."
    )
    subject_client_id = models.CharField(
        max_length=200, blank=True, help_text="The client_id as presented (may be unknown)."
    )
    client = models.ForeignKey(
        Client,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="alerts",
        help_text="The registered client, when the client_id names one.",
    )
    source_network = models.CharField(max_length=50, blank=True, help_text="CIDR.")
    environment = models.CharField(
        max_length=16, blank=True, help_text="The client's, when the client is known."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    close_reason = models.CharField(max_length=16, choices=CloseReason.choices, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    first_seen_at = models.DateTimeField(help_text="Time of the first matching event.")
    last_seen_at = models.DateTimeField(help_text="Time of the latest matching event.")
    count = models.PositiveIntegerField(default=1, help_text="Evaluations that found it.")
    evidence = models.JSONField(default=dict)
    previous = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="recurrences"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    objects = AlertQuerySet.as_manager()

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "subject_key"],
                condition=models.Q(status__in=["open", "acknowledged", "suppressed"]),
                name="unique_active_alert",
            )
        ]
        indexes = [
            # Navigation count and inbox default view: active alerts, newest first.
            models.Index(
                fields=["-last_seen_at"],
                condition=models.Q(status__in=["open", "acknowledged", "suppressed"]),
                name="alert_active_recent",
            ),
            # alerts_auto_resolve: active alerts quiet since a cutoff.
            models.Index(
                fields=["last_seen_at"],
                condition=models.Q(status__in=["open", "acknowledged"]),
                name="alert_quiet",
            ),
            models.Index(fields=["subject_client_id", "-last_seen_at"], name="alert_client"),
        ]

    def __str__(self) -> str:
        return f"{self.rule} {self.subject_key} ({self.status})"

    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    def subject_label(self) -> str:
        parts = []
        if self.subject_client_id:
            parts.append(self.client.name if self.client else self.subject_client_id)
        if self.source_network:
            parts.append(self.source_network)
        return " from ".join(parts) if len(parts) == 2 else (parts[0] if parts else "—")

    def audit_label(self) -> str:
        return f"alert {self.pk}: {self.rule} · {self.subject_label()}"[:200]


class AlertEvent(models.Model):
    """One line of an alert's timeline: a change of state, a response, a comment."""

    class Kind(models.TextChoices):
        OPENED = "opened", "Opened"
        REPEATED = "repeated", "Repeated"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"
        REOPENED = "reopened", "Reopened"
        SUPPRESSED = "suppressed", "Suppressed"
        ASSIGNED = "assigned", "Assigned"
        COMMENT = "comment", "Comment"
        RESPONSE = "response", "Response"
        NOTIFIED = "notified", "Notified"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="timeline")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    actor_label = models.CharField(max_length=150)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.alert_id} {self.kind} by {self.actor_label}"


class SuppressionQuerySet(models.QuerySet):
    def in_force(self, now=None) -> SuppressionQuerySet:
        return self.filter(expires_at__gt=now or timezone.now(), lifted_at__isnull=True)


class Suppression(models.Model):
    """Matching alerts are still raised and counted, but as `suppressed`, and notify nobody.

    Matches when every field given matches: a rule and/or a client and/or a network.
    """

    rule = models.CharField(max_length=40, blank=True, help_text="Empty: any rule.")
    client_id = models.CharField(max_length=200, blank=True, help_text="Empty: any client.")
    network = models.CharField(
        max_length=50, blank=True, validators=[validate_network], help_text="Empty: any."
    )
    reason = models.CharField(max_length=300)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lifted_at = models.DateTimeField(null=True, blank=True)

    objects = SuppressionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["expires_at"], name="suppression_expiry")]

    def __str__(self) -> str:
        return f"suppress {self.rule or 'any rule'} {self.client_id} {self.network}".strip()

    def is_in_force(self, now=None) -> bool:
        return self.lifted_at is None and self.expires_at > (now or timezone.now())

    def audit_fields(self) -> dict:
        return {
            "rule": self.rule,
            "client_id": self.client_id,
            "network": self.network,
            "reason": self.reason,
            "expires_at": self.expires_at.isoformat(),
        }


class AlertDestination(models.Model):
    """Where alert notifications go: an email list or a signed webhook."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    target = models.CharField(
        max_length=500, help_text="Comma-separated addresses (email) or an https URL (webhook)."
    )
    min_severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.HIGH)
    environments = models.JSONField(
        default=list, blank=True, help_text="Environments routed here; empty means all."
    )
    secret_encrypted = models.TextField(blank=True, help_text="Fernet token (alerts/crypto.py).")
    previous_secret_encrypted = models.TextField(blank=True)
    previous_secret_until = models.DateTimeField(
        null=True, blank=True, help_text="The old secret also signs until then (rotation)."
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def routes(self, *, severity: str, environment: str) -> bool:
        if not self.enabled or SEVERITY_RANK[severity] < SEVERITY_RANK[self.min_severity]:
            return False
        return not self.environments or environment in self.environments

    def audit_fields(self) -> dict:
        """No secret, ever: only whether one is set."""
        return {
            "name": self.name,
            "kind": self.kind,
            "target": self.target,
            "min_severity": self.min_severity,
            "environments": list(self.environments),
            "enabled": self.enabled,
        }


class AlertDelivery(models.Model):
    """One notification to one destination: a new alert, or an update for a group."""

    class Kind(models.TextChoices):
        OPENED = "opened", "New alert"
        UPDATE = "update", "Update"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    destination = models.ForeignKey(
        AlertDestination, on_delete=models.CASCADE, related_name="deliveries"
    )
    alert = models.ForeignKey(
        Alert, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    rule = models.CharField(max_length=40, help_text="The group: one stream per rule.")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    payload = models.JSONField(help_text="Built when queued, so a retry sends the same body.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # notifications_plan: the latest delivery per destination and rule.
            models.Index(fields=["destination", "rule", "-created_at"], name="delivery_group"),
            # deliveries_prune: the oldest rows past the retention, a batch at a time.
            models.Index(fields=["created_at"], name="delivery_created"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.rule} → {self.destination_id} ({self.status})"
