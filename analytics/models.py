from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from audit.events import MAX_LENGTHS, SOURCE_KEYWARD, Endpoint, Outcome, Reason


class TokenEvent(models.Model):
    """One request to a token service (token, introspection or revocation endpoint).

    Columns, choices and lengths come from the event record (audit/events.py), which every
    producer builds; rows are written only through analytics.store.

    On PostgreSQL the table is partitioned by RANGE on occurred_at, one partition per UTC
    day (analytics/partitions.py), and its primary key is (occurred_at, id): a partitioned
    table's unique constraints must include the partition key. Django still sees `id` as
    the primary key: it is unique in practice (a UUID, and the store inserts with ON
    CONFLICT (occurred_at, id) DO NOTHING), and Django's single-column pk keeps the ORM,
    the admin and `.get(pk=…)` working where a CompositePrimaryKey would not. Dedup on
    (occurred_at, id) is as good as on id because both are fixed when the event happens:
    a re-sent buffer item or a re-ingested log line carries the same id and the same time.
    SQLite (embedded mode) keeps a plain table with id as its primary key.
    """

    Endpoint = Endpoint
    Outcome = Outcome
    Reason = Reason

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No single-column index: the primary key (occurred_at, id) and, on PostgreSQL, a BRIN
    # index (created by the migration, not declared here: SQLite has no BRIN) serve time.
    occurred_at = models.DateTimeField()
    endpoint = models.CharField(max_length=MAX_LENGTHS["endpoint"], choices=Endpoint.choices)
    client_id = models.CharField(
        max_length=MAX_LENGTHS["client_id"], blank=True, help_text="As presented."
    )
    client_known = models.BooleanField(default=False)
    secret_id = models.BigIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=MAX_LENGTHS["outcome"], choices=Outcome.choices)
    reason = models.CharField(max_length=MAX_LENGTHS["reason"], choices=Reason.choices)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=MAX_LENGTHS["user_agent"], blank=True)
    scopes_requested = models.CharField(max_length=MAX_LENGTHS["scopes_requested"], blank=True)
    scopes_granted = models.CharField(max_length=MAX_LENGTHS["scopes_granted"], blank=True)
    jti = models.CharField(max_length=MAX_LENGTHS["jti"], blank=True)
    status_code = models.PositiveSmallIntegerField()
    duration_ms = models.FloatField(default=0)
    source = models.CharField(
        max_length=MAX_LENGTHS["source"],
        default=SOURCE_KEYWARD,
        help_text="The token service that recorded it.",
    )

    class Meta:
        ordering = ["-occurred_at", "-id"]
        # One index per filter of the events explorer, each ending in occurred_at so a
        # filtered page is read in time order. Low-cardinality filters whose common value
        # is most rows (outcome=success, endpoint=token, source=keyward) get partial
        # indexes on the rare values only: the common value is the unfiltered scan, and a
        # partial index costs nothing on the rows it leaves out (ingestion speed).
        indexes = [
            models.Index(fields=["client_id", "occurred_at"], name="tokenevent_client_time"),
            models.Index(fields=["source_ip", "occurred_at"], name="tokenevent_ip_time"),
            models.Index(fields=["reason", "occurred_at"], name="tokenevent_reason_time"),
            models.Index(
                fields=["occurred_at"],
                condition=Q(outcome="failure"),
                name="tokenevent_failure_time",
            ),
            models.Index(
                fields=["endpoint", "occurred_at"],
                condition=~Q(endpoint="token"),
                name="tokenevent_endpoint_time",
            ),
            models.Index(
                fields=["source", "occurred_at"],
                condition=~Q(source=SOURCE_KEYWARD),
                name="tokenevent_source_time",
            ),
            models.Index(fields=["jti"], condition=~Q(jti=""), name="tokenevent_jti"),
            # Also the secret-rotation progress (uses of each secret since a rotation).
            models.Index(
                fields=["secret_id", "occurred_at"],
                condition=Q(secret_id__isnull=False),
                name="tokenevent_secret_time",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.endpoint} {self.client_id} {self.reason}"
        )
