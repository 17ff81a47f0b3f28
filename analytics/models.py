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
            # Failures only: every success has reason "ok", so filtering on it is filtering
            # on outcome. A query for a failure reason must also say outcome = failure
            # for the planner to pick this index (the explorer does).
            models.Index(
                fields=["reason", "occurred_at"],
                condition=Q(outcome="failure"),
                name="tokenevent_reason_time",
            ),
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


# --- Rollups -------------------------------------------------------------------------
# Maintained by analytics.store in the same transaction as the raw rows (analytics/rollups.py),
# counting only rows actually inserted; the charts read only these. Each has a unique key
# that the store upserts on (INSERT … ON CONFLICT DO UPDATE count = count + excluded.count).

SCOPE_MAX_LENGTH = 200
# "203.0.113.0/24" or "2001:db8:1234::/48".
NETWORK_MAX_LENGTH = 49


class TrafficRollup(models.Model):
    """Requests per bucket, client, endpoint, outcome, reason and source."""

    bucket = models.DateTimeField(help_text="Start of the bucket (UTC).")
    client_id = models.CharField(max_length=MAX_LENGTHS["client_id"], blank=True)
    endpoint = models.CharField(max_length=MAX_LENGTHS["endpoint"], choices=Endpoint.choices)
    outcome = models.CharField(max_length=MAX_LENGTHS["outcome"], choices=Outcome.choices)
    reason = models.CharField(max_length=MAX_LENGTHS["reason"])
    source = models.CharField(max_length=MAX_LENGTHS["source"])
    count = models.BigIntegerField()

    KEY = ("bucket", "client_id", "endpoint", "outcome", "reason", "source")

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H:%M} {self.client_id} {self.reason} {self.count}"


class TrafficMinute(TrafficRollup):  # noqa: DJ008 - TrafficRollup.__str__
    class Meta:
        constraints = [
            models.UniqueConstraint(fields=TrafficRollup.KEY, name="trafficminute_key"),
        ]
        # The key's index serves time ranges; this one a client's page.
        indexes = [models.Index(fields=["client_id", "bucket"], name="trafficminute_client")]


class TrafficHour(TrafficRollup):  # noqa: DJ008 - TrafficRollup.__str__
    class Meta:
        constraints = [
            models.UniqueConstraint(fields=TrafficRollup.KEY, name="traffichour_key"),
        ]
        indexes = [models.Index(fields=["client_id", "bucket"], name="traffichour_client")]


class SourceNetwork(models.Model):
    """The networks a client_id was used from (IPv4 /24, IPv6 /48), per source, with when
    each was first and last seen: a client's page lists them, new ones stand out."""

    client_id = models.CharField(max_length=MAX_LENGTHS["client_id"], blank=True)
    source = models.CharField(max_length=MAX_LENGTHS["source"])
    network = models.CharField(max_length=NETWORK_MAX_LENGTH)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    count = models.BigIntegerField()
    failures = models.BigIntegerField()

    KEY = ("client_id", "source", "network")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["client_id", "source", "network"], name="sourcenetwork_key"
            )
        ]
        # Rollup retention prunes networks not seen for KEYWARD_ROLLUP_RETENTION_DAYS.
        indexes = [models.Index(fields=["last_seen"], name="sourcenetwork_last_seen")]

    def __str__(self) -> str:
        return f"{self.client_id} {self.network} ({self.source})"


class NetworkFailureHour(models.Model):
    """Failed requests per hour, source and network: the overview's top failing networks
    over any window, without reading raw events."""

    bucket = models.DateTimeField()
    source = models.CharField(max_length=MAX_LENGTHS["source"])
    network = models.CharField(max_length=NETWORK_MAX_LENGTH)
    count = models.BigIntegerField()

    KEY = ("bucket", "source", "network")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "source", "network"], name="networkfailurehour_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H:00} {self.network} {self.count}"


class ScopeUsageHour(models.Model):
    """Per hour, client and source: how often each scope was requested and issued (token
    endpoint). A request without a scope parameter that got a token counts as requesting
    every scope it carried: the client used them all. The scope review reads it."""

    bucket = models.DateTimeField()
    client_id = models.CharField(max_length=MAX_LENGTHS["client_id"], blank=True)
    source = models.CharField(max_length=MAX_LENGTHS["source"])
    scope = models.CharField(max_length=SCOPE_MAX_LENGTH)
    requested = models.BigIntegerField()
    issued = models.BigIntegerField()

    KEY = ("bucket", "client_id", "source", "scope")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "client_id", "source", "scope"], name="scopeusagehour_key"
            )
        ]
        indexes = [models.Index(fields=["client_id", "bucket"], name="scopeusagehour_client")]

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H:00} {self.client_id} {self.scope}"
