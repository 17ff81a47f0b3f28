"""The rollup tables, filled from the raw events already stored.

The backfill uses analytics.rollups as it is now (the tables were created just before, so
their shape is the one it writes); on a fresh database there is nothing to count. Not the
exercise rollup: it and the column it counts come with 0004, with nothing to count yet.
"""

from datetime import UTC, datetime, timedelta

from django.db import migrations, models


def rollups_backfill(apps, schema_editor):
    from analytics.rollups import rollups_rebuild

    TokenEvent = apps.get_model("analytics", "TokenEvent")
    if TokenEvent.objects.exists():
        # All of it: the earliest possible start to well past now; only the tables this
        # migration creates (later ones are filled by their own migrations).
        rollups_rebuild(
            start=datetime(1970, 1, 1, tzinfo=UTC),
            end=datetime.now(UTC) + timedelta(days=3650),
            rollups=FIRST_ROLLUPS,
        )


FIRST_ROLLUPS = (
    "analytics_trafficminute",
    "analytics_traffichour",
    "analytics_sourcenetwork",
    "analytics_networkfailurehour",
    "analytics_scopeusagehour",
)


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0002_tokenevent_from_audit"),
    ]

    operations = [
        migrations.CreateModel(
            name="NetworkFailureHour",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("bucket", models.DateTimeField()),
                ("source", models.CharField(max_length=64)),
                ("network", models.CharField(max_length=49)),
                ("count", models.BigIntegerField()),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("bucket", "source", "network"), name="networkfailurehour_key"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="ScopeUsageHour",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("bucket", models.DateTimeField()),
                ("client_id", models.CharField(blank=True, max_length=200)),
                ("source", models.CharField(max_length=64)),
                ("scope", models.CharField(max_length=200)),
                ("requested", models.BigIntegerField()),
                ("issued", models.BigIntegerField()),
            ],
            options={
                "indexes": [
                    models.Index(fields=["client_id", "bucket"], name="scopeusagehour_client")
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("bucket", "client_id", "source", "scope"), name="scopeusagehour_key"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="SourceNetwork",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("client_id", models.CharField(blank=True, max_length=200)),
                ("source", models.CharField(max_length=64)),
                ("network", models.CharField(max_length=49)),
                ("first_seen", models.DateTimeField()),
                ("last_seen", models.DateTimeField()),
                ("count", models.BigIntegerField()),
                ("failures", models.BigIntegerField()),
            ],
            options={
                "indexes": [models.Index(fields=["last_seen"], name="sourcenetwork_last_seen")],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("client_id", "source", "network"), name="sourcenetwork_key"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="TrafficHour",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("bucket", models.DateTimeField(help_text="Start of the bucket (UTC).")),
                ("client_id", models.CharField(blank=True, max_length=200)),
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
                    "outcome",
                    models.CharField(
                        choices=[("success", "Success"), ("failure", "Failure")], max_length=8
                    ),
                ),
                ("reason", models.CharField(max_length=32)),
                ("source", models.CharField(max_length=64)),
                ("count", models.BigIntegerField()),
            ],
            options={
                "indexes": [
                    models.Index(fields=["client_id", "bucket"], name="traffichour_client")
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("bucket", "client_id", "endpoint", "outcome", "reason", "source"),
                        name="traffichour_key",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="TrafficMinute",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("bucket", models.DateTimeField(help_text="Start of the bucket (UTC).")),
                ("client_id", models.CharField(blank=True, max_length=200)),
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
                    "outcome",
                    models.CharField(
                        choices=[("success", "Success"), ("failure", "Failure")], max_length=8
                    ),
                ),
                ("reason", models.CharField(max_length=32)),
                ("source", models.CharField(max_length=64)),
                ("count", models.BigIntegerField()),
            ],
            options={
                "indexes": [
                    models.Index(fields=["client_id", "bucket"], name="trafficminute_client")
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("bucket", "client_id", "endpoint", "outcome", "reason", "source"),
                        name="trafficminute_key",
                    )
                ],
            },
        ),
        migrations.RunPython(rollups_backfill, migrations.RunPython.noop),
    ]
