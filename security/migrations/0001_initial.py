"""The secret lifecycle's models move here from clients, with their data.

clients/migrations/0002 created the tables clients_secretpolicy, clients_secretfinding and
clients_notificationlog (and wrote the default policies); clients/migrations/0003 dropped
the models from clients' state without touching the tables. Here security:
1. adopts the three tables as they are (state only, db_table pointing at the old names);
2. renames them to security_*, like every other table named after its app. We rename
   rather than keep db_table for good: a table named after an app that no longer owns it
   misleads whoever reads the schema, and ALTER TABLE … RENAME is cheap (no rewrite, rows,
   ids and foreign keys untouched) on PostgreSQL and SQLite. Constraints and indexes with
   explicit names move along unchanged; PostgreSQL's id sequences and the automatically
   named foreign-key indexes keep their clients_* names, which is harmless (Django finds
   them by introspection);
3. moves their content types from clients to security, so permissions stay attached.

A fresh database runs clients 0001-0003 then this; an existing one runs 0003 and this.
Both are reversible.
"""

import django.core.validators
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

MOVED_MODELS = ("secretpolicy", "secretfinding", "notificationlog")


def _move_content_types(apps, source: str, target: str) -> None:
    """Relabel the moved models' content types from `source` to `target`.

    A fresh database has none yet (post_migrate creates them after the whole migrate);
    one where both exist keeps both rather than risk the unique (app_label, model).
    """
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED_MODELS:
        if not ContentType.objects.filter(app_label=target, model=model).exists():
            ContentType.objects.filter(app_label=source, model=model).update(app_label=target)


def move_content_types(apps, schema_editor):
    _move_content_types(apps, "clients", "security")


def move_content_types_back(apps, schema_editor):
    _move_content_types(apps, "security", "clients")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("clients", "0003_move_secret_lifecycle_to_security"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # 1. Adopt the tables clients/migrations/0002 created, as they are (state only).
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="SecretPolicy",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "environment",
                            models.CharField(
                                choices=[
                                    ("development", "Development"),
                                    ("staging", "Staging"),
                                    ("production", "Production"),
                                ],
                                max_length=16,
                                unique=True,
                            ),
                        ),
                        (
                            "max_secret_age_days",
                            models.PositiveIntegerField(
                                blank=True,
                                help_text="New secrets expire this many days after creation; empty means no limit.",
                                null=True,
                                validators=[
                                    django.core.validators.MinValueValidator(1),
                                    django.core.validators.MaxValueValidator(3650),
                                ],
                            ),
                        ),
                        (
                            "auto_revoke_replaced_after_days",
                            models.PositiveIntegerField(
                                blank=True,
                                help_text="Revoke a secret still unused this many days after a newer one replaced it.",
                                null=True,
                                validators=[
                                    django.core.validators.MinValueValidator(1),
                                    django.core.validators.MaxValueValidator(365),
                                ],
                            ),
                        ),
                        (
                            "auto_disable_dormant_after_days",
                            models.PositiveIntegerField(
                                blank=True,
                                help_text="Disable a client with no successful token for this many days.",
                                null=True,
                                validators=[
                                    django.core.validators.MinValueValidator(1),
                                    django.core.validators.MaxValueValidator(3650),
                                ],
                            ),
                        ),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        (
                            "updated_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "clients_secretpolicy",
                        "verbose_name_plural": "secret policies",
                        "ordering": ["environment"],
                    },
                ),
                migrations.CreateModel(
                    name="NotificationLog",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("secret_rotated", "Secret rotated"),
                                    ("secret_revoked", "Secret revoked"),
                                    ("findings_digest", "Findings digest"),
                                    ("auto_action", "Automatic action"),
                                ],
                                max_length=32,
                            ),
                        ),
                        ("recipients", models.JSONField(default=list)),
                        ("subject", models.CharField(max_length=300)),
                        (
                            "body_text",
                            models.TextField(
                                help_text="Rendered when queued, so a retry sends the same."
                            ),
                        ),
                        ("body_html", models.TextField(blank=True)),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("pending", "Pending"),
                                    ("sent", "Sent"),
                                    ("failed", "Failed"),
                                ],
                                default="pending",
                                max_length=8,
                            ),
                        ),
                        ("attempts", models.PositiveSmallIntegerField(default=0)),
                        ("last_error", models.TextField(blank=True)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("sent_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "client",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="notifications",
                                to="clients.client",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "clients_notificationlog",
                        "ordering": ["-created_at", "-id"],
                        "indexes": [
                            models.Index(
                                condition=models.Q(("status", "failed")),
                                fields=["-created_at"],
                                name="notification_failed",
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="SecretFinding",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("secret_too_old", "Secret older than the policy allows"),
                                    ("secret_expiring", "Secret expiring soon"),
                                    ("secret_unused", "Secret unused for 30 days"),
                                    ("client_dormant", "Client with no token for 30 days"),
                                ],
                                max_length=32,
                            ),
                        ),
                        (
                            "state",
                            models.CharField(
                                choices=[("open", "Open"), ("closed", "Closed")],
                                default="open",
                                max_length=8,
                            ),
                        ),
                        ("first_seen_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("last_seen_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("closed_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "notified_at",
                            models.DateTimeField(
                                blank=True,
                                help_text="Set when a scan claimed it for the digest email.",
                                null=True,
                            ),
                        ),
                        ("details", models.JSONField(blank=True, default=dict)),
                        (
                            "client",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="findings",
                                to="clients.client",
                            ),
                        ),
                        (
                            "secret",
                            models.ForeignKey(
                                blank=True,
                                help_text="Empty for client-level findings (client_dormant).",
                                null=True,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="findings",
                                to="clients.clientsecret",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "clients_secretfinding",
                        "ordering": ["-first_seen_at", "-id"],
                        "indexes": [
                            models.Index(
                                condition=models.Q(
                                    ("notified_at__isnull", True), ("state", "open")
                                ),
                                fields=["client"],
                                name="finding_unnotified",
                            ),
                            models.Index(
                                condition=models.Q(("state", "open")),
                                fields=["-first_seen_at"],
                                name="finding_open_recent",
                            ),
                        ],
                        "constraints": [
                            models.UniqueConstraint(
                                condition=models.Q(("secret__isnull", False), ("state", "open")),
                                fields=("kind", "client", "secret"),
                                name="unique_open_secret_finding",
                            ),
                            models.UniqueConstraint(
                                condition=models.Q(("secret__isnull", True), ("state", "open")),
                                fields=("kind", "client"),
                                name="unique_open_client_finding",
                            ),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        # 2. Rename them to security_*: a real ALTER TABLE … RENAME on PostgreSQL and SQLite.
        migrations.AlterModelTable(name="SecretPolicy", table=None),
        migrations.AlterModelTable(name="SecretFinding", table=None),
        migrations.AlterModelTable(name="NotificationLog", table=None),
        # 3. Move their content types (and so their permissions) along.
        migrations.RunPython(move_content_types, move_content_types_back),
    ]
