"""Moving the secret-lifecycle models from clients to security keeps every row.

The test database is migrated back to the schema before the move (clients 0002, no
security app), filled through the models of that migration state, and migrated forward
again. It runs on the suite's database (PostgreSQL in bin/test, SQLite when DATABASE_URL
is empty) and always ends at the latest migrations, so the tests after it see the usual
schema.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from clients.models import Client, ClientSecret
from security.models import NotificationLog, SecretFinding, SecretPolicy

BEFORE_MOVE = [("clients", "0002_secret_lifecycle"), ("security", None)]
MOVED = ("secretpolicy", "secretfinding", "notificationlog")
SEEN = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

pytestmark = pytest.mark.migrations


def _migrate(targets: list[tuple[str, str | None]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)  # a fresh loader sees what is applied now
    executor.migrate(targets)
    return executor


def _latest() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def _tables() -> set[str]:
    return set(connection.introspection.table_names())


@pytest.fixture
def before_move(transactional_db):
    """Old models (apps of the pre-move state); the schema is the latest again afterwards."""
    executor = _migrate(BEFORE_MOVE)
    try:
        yield executor.loader.project_state(BEFORE_MOVE[0]).apps
    finally:
        _migrate(_latest())


def _old_rows(apps) -> dict:
    """One client with a secret, a policy, a finding and a notification, the old way."""
    client = apps.get_model("clients", "Client").objects.create(
        name="Billing", environment="production", owner_email="owner@example.com"
    )
    secret = apps.get_model("clients", "ClientSecret").objects.create(
        client=client, secret_hash="a" * 64, hint="kwsec_…abcd"
    )
    policy, _ = apps.get_model("clients", "SecretPolicy").objects.update_or_create(
        environment="staging",
        defaults={"max_secret_age_days": 30, "auto_revoke_replaced_after_days": 7},
    )
    finding = apps.get_model("clients", "SecretFinding").objects.create(
        kind="secret_unused",
        client=client,
        secret=secret,
        first_seen_at=SEEN,
        last_seen_at=SEEN,
        details={"hint": secret.hint},
    )
    notification = apps.get_model("clients", "NotificationLog").objects.create(
        kind="secret_rotated",
        recipients=["owner@example.com"],
        subject="Secret rotated",
        body_text="A new secret.",
        status="failed",
        attempts=5,
        last_error="SMTPServerDisconnected: gone",
        client=client,
    )
    return {
        "client": client.pk,
        "secret": secret.pk,
        "policy": policy.pk,
        "finding": finding.pk,
        "notification": notification.pk,
    }


class TestMoveToSecurity:
    def test_it_puts_the_tables_back_under_their_old_names_when_reversed(self, before_move):
        tables = _tables()
        assert {f"clients_{model}" for model in MOVED} <= tables
        assert not {f"security_{model}" for model in MOVED} & tables

    def test_it_keeps_the_rows_and_their_relations(self, before_move):
        ids = _old_rows(before_move)
        _migrate(_latest())

        tables = _tables()
        assert {f"security_{model}" for model in MOVED} <= tables
        assert not {f"clients_{model}" for model in MOVED} & tables
        policy = SecretPolicy.objects.get(environment="staging")
        assert policy.pk == ids["policy"]
        assert (policy.max_secret_age_days, policy.auto_revoke_replaced_after_days) == (30, 7)
        finding = SecretFinding.objects.get(pk=ids["finding"])
        assert finding.client == Client.objects.get(pk=ids["client"])
        assert finding.secret == ClientSecret.objects.get(pk=ids["secret"])
        assert (finding.kind, finding.state, finding.first_seen_at) == (
            "secret_unused",
            "open",
            SEEN,
        )
        assert finding.details == {"hint": "kwsec_…abcd"}
        notification = NotificationLog.objects.get(pk=ids["notification"])
        assert notification.client_id == ids["client"]
        assert (notification.status, notification.attempts) == ("failed", 5)
        assert notification.recipients == ["owner@example.com"]

    def test_it_keeps_ids_counting_and_constraints_enforced(self, before_move):
        ids = _old_rows(before_move)
        _migrate(_latest())

        later = NotificationLog.objects.create(kind="auto_action", subject="s", body_text="b")
        assert later.pk > ids["notification"]
        with pytest.raises(IntegrityError), transaction.atomic():
            # A second open finding for the same secret: the partial unique constraint moved.
            SecretFinding.objects.create(
                kind="secret_unused", client_id=ids["client"], secret_id=ids["secret"]
            )

    def test_it_moves_the_content_types_with_their_ids(self, transactional_db):
        ContentType.objects.clear_cache()
        before = dict(
            ContentType.objects.filter(app_label="security", model__in=MOVED).values_list(
                "model", "pk"
            )
        )
        # The test database's content types were made for security; going back relabels them.
        _migrate(BEFORE_MOVE)
        try:
            moved_back = dict(
                ContentType.objects.filter(app_label="clients", model__in=MOVED).values_list(
                    "model", "pk"
                )
            )
        finally:
            _migrate(_latest())
        after = dict(
            ContentType.objects.filter(app_label="security", model__in=MOVED).values_list(
                "model", "pk"
            )
        )
        assert set(before) == set(MOVED)
        assert moved_back == before == after
        assert not ContentType.objects.filter(app_label="clients", model__in=MOVED).exists()
