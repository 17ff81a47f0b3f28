"""Analytics rows: the event store (token events and their rollups) and ingestion tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

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
    subject_client_id = models.CharField(
        max_length=MAX_LENGTHS["subject_client_id"],
        blank=True,
        default="",
        # Also in the database: a drain of the previous release, still running during a
        # deploy, inserts without this column.
        db_default="",
        help_text="Introspection of an active token: the client the token was issued to.",
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
            # Not reason=ok (most rows; the unfiltered scan serves it, as outcome=success).
            models.Index(
                fields=["reason", "occurred_at"],
                condition=~Q(reason=Reason.OK),
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
        indexes = [
            models.Index(fields=["client_id", "bucket"], name="traffichour_client"),
            # unknown_client_ids over hours: the few unknown-client rows, read from the
            # index alone (the key's index would walk every row of the hours).
            models.Index(
                fields=["bucket"],
                include=["client_id", "source", "count"],
                condition=Q(reason=Reason.UNKNOWN_CLIENT),
                name="traffichour_unknown",
            ),
        ]


class TrafficTotal(models.Model):
    """Requests per bucket, endpoint, outcome, reason and source, every client together:
    the overview's chart, totals and reasons. A bucket holds a few dozen keys however
    many clients there are, where TrafficMinute holds about one per client active in it."""

    bucket = models.DateTimeField(help_text="Start of the bucket (UTC).")
    endpoint = models.CharField(max_length=MAX_LENGTHS["endpoint"], choices=Endpoint.choices)
    outcome = models.CharField(max_length=MAX_LENGTHS["outcome"], choices=Outcome.choices)
    reason = models.CharField(max_length=MAX_LENGTHS["reason"])
    source = models.CharField(max_length=MAX_LENGTHS["source"])
    count = models.BigIntegerField()

    KEY = ("bucket", "endpoint", "outcome", "reason", "source")

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H:%M} {self.reason} {self.count}"


class TrafficMinuteTotal(TrafficTotal):  # noqa: DJ008 - TrafficTotal.__str__
    class Meta:
        # The key's index, bucket first, serves every read (time ranges).
        constraints = [
            models.UniqueConstraint(fields=TrafficTotal.KEY, name="trafficminutetotal_key"),
        ]


class TrafficHourTotal(TrafficTotal):  # noqa: DJ008 - TrafficTotal.__str__
    class Meta:
        constraints = [
            models.UniqueConstraint(fields=TrafficTotal.KEY, name="traffichourtotal_key"),
        ]


class TrafficDayTotal(TrafficTotal):  # noqa: DJ008 - TrafficTotal.__str__
    """Per UTC day: ranges of days (the overview's 30 days) read a few dozen rows a day
    where TrafficHourTotal has them every hour."""

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=TrafficTotal.KEY, name="trafficdaytotal_key"),
        ]


class ClientDay(models.Model):
    """Per UTC day, client_id (as presented) and source: requests, failures, unknown-client
    attempts and the last request. The overview's top clients and unknown client_ids over
    days read one row per client and day instead of one per client, hour and reason."""

    bucket = models.DateTimeField(help_text="Midnight UTC of the day.")
    client_id = models.CharField(max_length=MAX_LENGTHS["client_id"], blank=True)
    source = models.CharField(max_length=MAX_LENGTHS["source"])
    requests = models.BigIntegerField()
    failures = models.BigIntegerField()
    unknown = models.BigIntegerField(help_text="Failures with reason unknown_client.")
    last_seen = models.DateTimeField()

    KEY = ("bucket", "client_id", "source")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bucket", "client_id", "source"], name="clientday_key")
        ]
        indexes = [
            # unknown_client_ids: the few rows with unknown-client attempts, by day.
            models.Index(fields=["bucket"], condition=Q(unknown__gt=0), name="clientday_unknown"),
            # client_tops (analytics/selectors.py): each day's busiest and most failing
            # clients, the rows over a threshold, then the exact totals of those clients.
            models.Index(fields=["bucket", "requests"], name="clientday_requests"),
            models.Index(fields=["bucket", "failures"], name="clientday_failures"),
            models.Index(fields=["client_id", "bucket"], name="clientday_client"),
        ]

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d} {self.client_id} {self.requests}"


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


class NetworkFailures(models.Model):
    """Failed requests per bucket, source and network (/24, /48)."""

    bucket = models.DateTimeField()
    source = models.CharField(max_length=MAX_LENGTHS["source"])
    network = models.CharField(max_length=NETWORK_MAX_LENGTH)
    count = models.BigIntegerField()

    KEY = ("bucket", "source", "network")

    class Meta:
        abstract = True


class NetworkFailureHour(NetworkFailures):
    """Failed requests per hour, source and network: the overview's top failing networks
    over any window, without reading raw events."""

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "source", "network"], name="networkfailurehour_key"
            )
        ]
        # top_failing_networks: the exact hours of the few networks that can still win.
        indexes = [models.Index(fields=["network", "bucket"], name="networkfailurehour_net")]

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H:00} {self.network} {self.count}"


class NetworkFailureDay(NetworkFailures):
    """Failed requests per UTC day, source and network: what top_failing_networks bounds
    its candidates with over days (one row per network and day where NetworkFailureHour
    has up to 24), like ClientDay for the top clients."""

    bucket = models.DateTimeField(help_text="Midnight UTC of the day.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "source", "network"], name="networkfailureday_key"
            )
        ]
        indexes = [
            # top_failing_networks: each day's most failing networks, the rows over a
            # threshold, then the exact days of those networks.
            models.Index(fields=["bucket", "count"], name="networkfailureday_count"),
            models.Index(fields=["network", "bucket"], name="networkfailureday_net"),
        ]

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d} {self.network} {self.count}"


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


class ScopeExerciseHour(models.Model):
    """Per hour, client and scope: how often a resource server checked a token of that
    client carrying that scope. Two ways in: Keyward's introspection answers (`via`
    introspection, `reporter` the resource server's client_id; every scope of the token
    counts, since introspection does not say which one the resource server needed), and
    usage reports of the resource-server kit (`via` report, `reporter` the report's
    resource name; the scopes the protected view required). The scope review's "last
    exercised" reads it."""

    class Via(models.TextChoices):
        INTROSPECTION = "introspection", "Introspection"
        REPORT = "report", "Usage report"

    bucket = models.DateTimeField()
    client_id = models.CharField(max_length=MAX_LENGTHS["client_id"], blank=True)
    scope = models.CharField(max_length=SCOPE_MAX_LENGTH)
    via = models.CharField(max_length=16, choices=Via.choices)
    reporter = models.CharField(max_length=MAX_LENGTHS["client_id"])
    count = models.BigIntegerField()

    KEY = ("bucket", "client_id", "scope", "via", "reporter")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "client_id", "scope", "via", "reporter"],
                name="scopeexercisehour_key",
            )
        ]
        indexes = [
            models.Index(fields=["client_id", "bucket"], name="scopeexercisehour_client"),
            # "Does any resource server report this scope?" (not reported vs never).
            models.Index(fields=["scope", "bucket"], name="scopeexercisehour_scope"),
        ]

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H:00} {self.client_id} {self.scope} ({self.reporter})"


class UsageReport(models.Model):
    """A usage report batch received from a resource server (POST /analytics/api/usage),
    kept so that a batch sent again (a retry after a lost answer) is counted once."""

    batch_id = models.UUIDField(primary_key=True)
    token = models.ForeignKey("IngestionToken", null=True, on_delete=models.SET_NULL)
    reporter = models.CharField(max_length=MAX_LENGTHS["client_id"])
    received_at = models.DateTimeField(default=timezone.now)
    entries = models.PositiveIntegerField()
    total = models.BigIntegerField(help_text="Sum of the entries' counts.")

    class Meta:
        # Rollup retention prunes batches older than KEYWARD_ROLLUP_RETENTION_DAYS.
        indexes = [models.Index(fields=["received_at"], name="usagereport_received")]

    def __str__(self) -> str:
        return f"{self.batch_id} from {self.reporter}"


# --- Ingestion -------------------------------------------------------------------------


class IngestionToken(models.Model):
    """A bearer token another system uses to post its logs to the ingest endpoint.

    The token is `kwing_<lookup>_<secret>`: `lookup` finds the row, and only an HMAC of the
    whole token (keyed with KEYWARD_SECRET_PEPPER, as client secrets are) is stored, so the
    table alone cannot be used to ingest. Shown once, when created.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        EXPIRED = "expired", "Expired"
        REVOKED = "revoked", "Revoked"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, help_text="What sends with it, e.g. 'Keycloak prod'.")
    source = models.CharField(
        max_length=64,
        help_text="The source name its events get unless a request names another.",
    )
    lookup = models.CharField(max_length=16, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint})"

    @property
    def hint(self) -> str:
        """What may be shown of the token: its prefix and lookup part."""
        return f"kwing_{self.lookup}_…"

    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @property
    def status(self) -> str:
        if self.is_revoked():
            return self.Status.REVOKED
        if self.is_expired():
            return self.Status.EXPIRED
        return self.Status.ACTIVE
