"""The token-event table moves here from audit, with its rows.

1. State: analytics adopts the model `TokenEvent` (audit/migrations/0004 drops it from
   audit's state and the old table after this migration has copied it).
2. Database: a new table `analytics_tokenevent`. On PostgreSQL it is partitioned by RANGE
   on occurred_at, one partition per UTC day, primary key (occurred_at, id) (a partitioned
   table's unique keys must hold the partition key; see analytics/models.py), with the
   model's indexes and a BRIN index on occurred_at; a partition is created for every day
   that holds events, and for today and the next days. Elsewhere (SQLite) a plain table.
3. The rows of audit_tokenevent are copied over (INSERT … SELECT, in the database).
4. The content type moves from audit to analytics, so permissions stay attached.

Reversible: backwards, the rows are copied back into audit_tokenevent (which
audit/migrations/0004 recreates first) and the new table dropped.
"""

import uuid
from datetime import UTC, datetime, timedelta

from django.db import migrations, models

OLD_TABLE = "audit_tokenevent"
TABLE = "analytics_tokenevent"
COLUMNS = (
    "id, occurred_at, endpoint, client_id, client_known, secret_id, outcome, reason, "
    "source_ip, user_agent, scopes_requested, scopes_granted, jti, status_code, duration_ms, "
    "source"
)
# Partitions created ahead by the migration; the beat task keeps creating them after.
DAYS_AHEAD = 3

POSTGRES_TABLE = f"""
CREATE TABLE {TABLE} (
    id uuid NOT NULL,
    occurred_at timestamp with time zone NOT NULL,
    endpoint varchar(16) NOT NULL,
    client_id varchar(200) NOT NULL,
    client_known boolean NOT NULL,
    secret_id bigint NULL,
    outcome varchar(8) NOT NULL,
    reason varchar(32) NOT NULL,
    source_ip inet NULL,
    user_agent varchar(300) NOT NULL,
    scopes_requested varchar(1000) NOT NULL,
    scopes_granted varchar(1000) NOT NULL,
    jti varchar(64) NOT NULL,
    status_code smallint NOT NULL CHECK (status_code >= 0),
    duration_ms double precision NOT NULL,
    source varchar(64) NOT NULL,
    PRIMARY KEY (occurred_at, id)
) PARTITION BY RANGE (occurred_at)
"""


def _partition(day) -> str:
    following = day + timedelta(days=1)
    return (
        f"CREATE TABLE {TABLE}_p{day:%Y%m%d} PARTITION OF {TABLE} "
        f"FOR VALUES FROM ('{day.isoformat()} 00:00+00') TO ('{following.isoformat()} 00:00+00')"
    )


def _days_with_events(cursor, table: str) -> list:
    cursor.execute(
        f"SELECT DISTINCT (occurred_at AT TIME ZONE 'UTC')::date FROM {table}"  # noqa: S608
    )
    return [row[0] for row in cursor.fetchall()]


def table_create(apps, schema_editor):
    model = apps.get_model("analytics", "TokenEvent")
    if schema_editor.connection.vendor != "postgresql":
        schema_editor.create_model(model)
        return
    schema_editor.execute(POSTGRES_TABLE)
    # Indexes on the parent: PostgreSQL creates them on every partition, now and later.
    for index in model._meta.indexes:
        schema_editor.add_index(model, index)
    # BRIN: a few pages per partition, and time ranges within a day skip most of it.
    # Not declared on the model, SQLite has no BRIN.
    schema_editor.execute(f"CREATE INDEX tokenevent_time_brin ON {TABLE} USING brin (occurred_at)")
    today = datetime.now(UTC).date()
    with schema_editor.connection.cursor() as cursor:
        days = set(_days_with_events(cursor, OLD_TABLE))
    days |= {today + timedelta(days=n) for n in range(DAYS_AHEAD + 1)}
    for day in sorted(days):
        schema_editor.execute(_partition(day))


def table_drop(apps, schema_editor):
    schema_editor.execute(f"DROP TABLE {TABLE}")


def rows_copy(apps, schema_editor):
    schema_editor.execute(
        f"INSERT INTO {TABLE} ({COLUMNS}) SELECT {COLUMNS} FROM {OLD_TABLE}"  # noqa: S608
    )


def rows_copy_back(apps, schema_editor):
    schema_editor.execute(
        f"INSERT INTO {OLD_TABLE} ({COLUMNS}) SELECT {COLUMNS} FROM {TABLE}"  # noqa: S608
    )


def _content_type_relabel(apps, source: str, target: str) -> None:
    """A fresh database has none yet (post_migrate creates them after the whole migrate);
    one where both exist keeps both rather than risk the unique (app_label, model)."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label=target, model="tokenevent").exists():
        ContentType.objects.filter(app_label=source, model="tokenevent").update(app_label=target)


def content_type_move(apps, schema_editor):
    _content_type_relabel(apps, "audit", "analytics")


def content_type_move_back(apps, schema_editor):
    _content_type_relabel(apps, "analytics", "audit")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("audit", "0003_tokenevent_source"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="TokenEvent",
                    fields=[
                        (
                            "id",
                            models.UUIDField(
                                default=uuid.uuid4,
                                editable=False,
                                primary_key=True,
                                serialize=False,
                            ),
                        ),
                        ("occurred_at", models.DateTimeField()),
                        (
                            "endpoint",
                            models.CharField(
                                choices=[
                                    ("token", "Token"),
                                    ("introspect", "Introspection"),
                                    ("revoke", "Revocation"),
                                ],
                                max_length=16,
                            ),
                        ),
                        (
                            "client_id",
                            models.CharField(blank=True, help_text="As presented.", max_length=200),
                        ),
                        ("client_known", models.BooleanField(default=False)),
                        ("secret_id", models.BigIntegerField(blank=True, null=True)),
                        (
                            "outcome",
                            models.CharField(
                                choices=[("success", "Success"), ("failure", "Failure")],
                                max_length=8,
                            ),
                        ),
                        (
                            "reason",
                            models.CharField(
                                choices=[
                                    ("ok", "OK"),
                                    ("bad_secret", "Bad secret"),
                                    ("unknown_client", "Unknown client"),
                                    ("disabled_client", "Disabled client"),
                                    ("expired_secret", "Expired secret"),
                                    ("revoked_secret", "Revoked secret"),
                                    ("ip_not_allowed", "Source IP not allowed"),
                                    ("invalid_scope", "Invalid scope"),
                                    ("rate_limited", "Rate limited"),
                                    ("invalid_request", "Invalid request"),
                                    ("invalid_client", "Invalid client authentication"),
                                    ("unsupported_grant_type", "Unsupported grant type"),
                                    ("unauthorized", "Caller not authorized"),
                                    ("server_error", "Server error"),
                                ],
                                max_length=32,
                            ),
                        ),
                        ("source_ip", models.GenericIPAddressField(blank=True, null=True)),
                        ("user_agent", models.CharField(blank=True, max_length=300)),
                        ("scopes_requested", models.CharField(blank=True, max_length=1000)),
                        ("scopes_granted", models.CharField(blank=True, max_length=1000)),
                        ("jti", models.CharField(blank=True, max_length=64)),
                        ("status_code", models.PositiveSmallIntegerField()),
                        ("duration_ms", models.FloatField(default=0)),
                        (
                            "source",
                            models.CharField(
                                default="keyward",
                                help_text="The token service that recorded it.",
                                max_length=64,
                            ),
                        ),
                    ],
                    options={
                        "ordering": ["-occurred_at", "-id"],
                        "indexes": [
                            models.Index(
                                fields=["client_id", "occurred_at"], name="tokenevent_client_time"
                            ),
                            models.Index(
                                fields=["source_ip", "occurred_at"], name="tokenevent_ip_time"
                            ),
                            models.Index(
                                condition=models.Q(("outcome", "failure")),
                                fields=["reason", "occurred_at"],
                                name="tokenevent_reason_time",
                            ),
                            models.Index(
                                condition=models.Q(("outcome", "failure")),
                                fields=["occurred_at"],
                                name="tokenevent_failure_time",
                            ),
                            models.Index(
                                condition=models.Q(("endpoint", "token"), _negated=True),
                                fields=["endpoint", "occurred_at"],
                                name="tokenevent_endpoint_time",
                            ),
                            models.Index(
                                condition=models.Q(("source", "keyward"), _negated=True),
                                fields=["source", "occurred_at"],
                                name="tokenevent_source_time",
                            ),
                            models.Index(
                                condition=models.Q(("jti", ""), _negated=True),
                                fields=["jti"],
                                name="tokenevent_jti",
                            ),
                            models.Index(
                                condition=models.Q(("secret_id__isnull", False)),
                                fields=["secret_id", "occurred_at"],
                                name="tokenevent_secret_time",
                            ),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(table_create, table_drop),
        migrations.RunPython(rows_copy, rows_copy_back),
        migrations.RunPython(content_type_move, content_type_move_back),
    ]
