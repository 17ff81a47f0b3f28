"""An alert's life: one per rule and subject, repeats, quiet resolution, recurrence,
suppression and its expiry, triage with audit rows and timeline entries."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction

from alerts.detections import Subject
from alerts.evaluation import detections_evaluate
from alerts.models import Alert, AlertEvent
from alerts.services import (
    alert_acknowledge,
    alert_assign,
    alert_comment,
    alert_raise,
    alert_resolve,
    alerts_bulk_update,
    suppression_create,
    suppression_lift,
)
from audit.models import AdminAction
from audit.services import Actor

from .conftest import NOW, Reason, traffic

pytestmark = pytest.mark.django_db

SUBJECT = Subject(client_id="abc")


def raise_at(at, **kwargs):
    return alert_raise(
        rule="brute_force", subject=SUBJECT, evidence={"failures": 1}, seen_at=at, now=at, **kwargs
    )


class TestDeduplication:
    def test_repeats_update_the_one_open_alert(self, clock):
        first = raise_at(NOW)
        again = raise_at(NOW + timedelta(minutes=1))
        same = raise_at(NOW + timedelta(minutes=1))
        assert (first.change, again.change, same.change) == ("opened", "updated", "unchanged")
        alert = Alert.objects.get()
        assert alert.count == 2 and alert.first_seen_at == NOW
        assert alert.last_seen_at == NOW + timedelta(minutes=1)

    def test_a_new_alert_is_logged_once_committed(
        self, clock, caplog, django_capture_on_commit_callbacks
    ):
        with caplog.at_level("WARNING", logger="alerts.services"):
            with django_capture_on_commit_callbacks(execute=True):
                alert = raise_at(NOW).alert
            raise_at(NOW + timedelta(minutes=1))  # a repeat updates it: no new line
        assert [r.getMessage() for r in caplog.records] == [
            f"alert #{alert.pk} opened: brute_force (high) on {SUBJECT.key}"
        ]

    def test_the_database_refuses_a_second_active_alert(self, clock):
        alert = raise_at(NOW).alert
        duplicate = Alert(
            rule=alert.rule,
            severity="high",
            subject_key=alert.subject_key,
            first_seen_at=NOW,
            last_seen_at=NOW,
        )
        with pytest.raises(IntegrityError), transaction.atomic():
            duplicate.save()

    def test_re_evaluating_the_same_events_changes_nothing(self, make_client, clock):
        client, _ = make_client()
        traffic(30, client_id=client.client_id, reason=Reason.BAD_SECRET)
        assert detections_evaluate()["opened"] == 1
        clock.shift(timedelta(seconds=30))
        assert detections_evaluate().get("unchanged") == 1
        assert Alert.objects.get().count == 1


class TestQuietPeriodAndRecurrence:
    def test_it_resolves_itself_after_the_quiet_period(self, make_client, clock, settings):
        client, _ = make_client()
        traffic(30, client_id=client.client_id, reason=Reason.BAD_SECRET)
        detections_evaluate()
        clock.shift(timedelta(seconds=settings.KEYWARD_ALERT_QUIET_SECONDS + 60))
        assert detections_evaluate()["resolved"] == 1
        alert = Alert.objects.get()
        assert (alert.status, alert.close_reason) == ("resolved", "automatic")
        assert alert.timeline.filter(kind="resolved", actor_label="system").exists()
        assert AdminAction.objects.filter(action="alert.resolve", target_id=str(alert.pk)).exists()

    def test_recurrence_opens_a_new_alert_linked_to_the_resolved_one(self, make_client, clock):
        client, _ = make_client()
        traffic(30, client_id=client.client_id, reason=Reason.BAD_SECRET)
        detections_evaluate()
        old = Alert.objects.get()
        alert_resolve(actor=Actor.cli(), alert=old, close_reason="true_positive")
        # The same events, evaluated again, do not reopen it.
        clock.shift(timedelta(seconds=30))
        detections_evaluate()
        assert Alert.objects.count() == 1
        # New attempts do.
        clock.shift(timedelta(minutes=2))
        traffic(
            30,
            client_id=client.client_id,
            reason=Reason.BAD_SECRET,
            end=NOW + timedelta(minutes=2, seconds=30),
        )
        detections_evaluate()
        new = Alert.objects.exclude(pk=old.pk).get()
        assert new.previous == old and new.status == "open"
        assert new.timeline.get(kind="reopened").details == {"previous": old.pk}
        old.refresh_from_db()
        assert old.close_reason == "true_positive"


class TestSuppression:
    def test_matches_are_raised_suppressed_and_still_counted(self, clock):
        suppression_create(
            actor=Actor.cli(),
            rule="brute_force",
            client_id="abc",
            reason="pen test",
            expires_at=NOW + timedelta(hours=1),
        )
        raise_at(NOW)
        raise_at(NOW + timedelta(minutes=1))
        alert = Alert.objects.get()
        assert alert.status == "suppressed" and alert.count == 2
        assert alert.deliveries.count() == 0

    def test_it_suppresses_open_alerts_at_once(self, clock):
        alert = raise_at(NOW).alert
        suppression_create(
            actor=Actor.cli(),
            network="",
            client_id="abc",
            reason="known",
            expires_at=NOW + timedelta(hours=1),
        )
        alert.refresh_from_db()
        assert alert.status == "suppressed" and alert.timeline.filter(kind="suppressed").exists()

    def test_after_expiry_the_next_match_opens_the_alert_again(self, clock):
        suppression_create(
            actor=Actor.cli(),
            client_id="abc",
            reason="maintenance",
            expires_at=NOW + timedelta(minutes=30),
        )
        raise_at(NOW)
        clock.shift(timedelta(minutes=31))
        raise_at(NOW + timedelta(minutes=31))
        alert = Alert.objects.get()
        assert alert.status == "open" and alert.timeline.filter(kind="reopened").exists()

    def test_a_network_suppression_covers_smaller_networks_inside_it(self, clock):
        suppression_create(
            actor=Actor.cli(),
            network="203.0.113.0/24",
            reason="scanner",
            expires_at=NOW + timedelta(days=1),
        )
        inside = Subject(network="203.0.113.7/32")
        outside = Subject(network="198.51.100.7/32")
        for subject in (inside, outside):
            alert_raise(rule="credential_stuffing", subject=subject, evidence={}, seen_at=NOW)
        statuses = dict(Alert.objects.values_list("source_network", "status"))
        assert statuses == {"203.0.113.7/32": "suppressed", "198.51.100.7/32": "open"}

    def test_creating_and_lifting_are_audited(self, clock):
        s = suppression_create(
            actor=Actor.cli(),
            rule="scope_probing",
            reason="release",
            expires_at=NOW + timedelta(hours=2),
        )
        suppression_lift(actor=Actor.cli(), suppression=s)
        actions = set(AdminAction.objects.values_list("action", flat=True))
        assert {"suppression.create", "suppression.lift"} <= actions


class TestTriage:
    def test_acknowledge_resolve_assign_and_comment_leave_a_trail(self, clock, operator):
        actor = Actor(label=operator.username, user=operator)
        alert = raise_at(NOW).alert
        alert_acknowledge(actor=actor, alert=alert)
        alert_assign(actor=actor, alert=alert, assignee=None)
        alert_comment(actor=actor, alert=alert, text="Owner says it is a stale deploy.")
        alert_resolve(actor=actor, alert=alert, close_reason="benign")
        alert.refresh_from_db()
        assert (alert.status, alert.close_reason) == ("resolved", "benign")
        kinds = list(alert.timeline.values_list("kind", flat=True))
        assert kinds == ["opened", "acknowledged", "assigned", "comment", "resolved"]
        rows = AdminAction.objects.filter(target_type="alert").order_by("id")
        actions = list(rows.values_list("action", flat=True))
        assert actions == ["alert.acknowledge", "alert.assign", "alert.comment", "alert.resolve"]

    def test_bulk_resolve_writes_one_row_per_alert(self, clock):
        for n in range(3):
            alert_raise(
                rule="brute_force", subject=Subject(client_id=f"c{n}"), evidence={}, seen_at=NOW
            )
        changed = alerts_bulk_update(
            actor=Actor.cli(),
            alerts=list(Alert.objects.all()),
            action="resolve",
            close_reason="false_positive",
        )
        assert changed == 3
        assert AdminAction.objects.filter(action="alert.resolve").count() == 3
        assert AlertEvent.objects.filter(kind="resolved").count() == 3


class TestAfterDrainHook:
    def test_it_evaluates_at_most_once_per_interval(self, make_client, clock):
        from alerts.evaluation import after_batch_drained

        client, _ = make_client()
        traffic(30, client_id=client.client_id, reason=Reason.BAD_SECRET)
        assert after_batch_drained()["opened"] == 1
        assert after_batch_drained() is None  # a second batch right after: skipped

    def test_it_skips_a_backfill_of_old_logs(self, make_client, clock):
        from alerts.evaluation import after_batch_drained

        client, _ = make_client()
        traffic(30, client_id=client.client_id, reason=Reason.BAD_SECRET)
        assert after_batch_drained(newest=NOW - timedelta(hours=2)) is None

    def test_a_stored_batch_is_evaluated_without_waiting_for_beat(self, make_client, clock):
        """analytics.store sends events_stored; alerts' receiver queues the evaluation (run
        eagerly here; tests/alerts/test_worker.py runs it on a worker)."""
        from django.core.cache import cache

        from alerts.evaluation import _AFTER_DRAIN_CLAIM
        from analytics.store import token_events_store
        from audit.events import TokenEventRecord

        client, _ = make_client()
        cache.delete(_AFTER_DRAIN_CLAIM)
        token_events_store(
            [
                TokenEventRecord(
                    id=uuid.uuid4().hex,
                    occurred_at=NOW.timestamp() - i,
                    endpoint="token",
                    client_id=client.client_id,
                    client_known=True,
                    outcome="failure",
                    reason=Reason.BAD_SECRET,
                    source_ip="203.0.113.5",
                    status_code=401,
                )
                for i in range(25)
            ]
        )
        assert Alert.objects.filter(rule="brute_force", subject_client_id=client.client_id).exists()


def failed_attempts(client_id: str, count: int = 25) -> list:
    from audit.events import TokenEventRecord

    return [
        TokenEventRecord(
            id=uuid.uuid4().hex,
            occurred_at=NOW.timestamp() - i,
            endpoint="token",
            client_id=client_id,
            client_known=True,
            outcome="failure",
            reason=Reason.BAD_SECRET,
            source_ip="203.0.113.5",
            status_code=401,
        )
        for i in range(count)
    ]


class TestEmbeddedDirectWrites:
    """Embedded mode (no Redis) writes token events straight to the table, with no drain
    to announce them: the write itself sends events_stored, once committed."""

    @pytest.fixture(autouse=True)
    def _fresh_claim(self):
        from django.core.cache import cache

        from alerts.evaluation import _AFTER_DRAIN_CLAIM

        cache.delete(_AFTER_DRAIN_CLAIM)

    def brute_force_alert(self, client) -> bool:
        return Alert.objects.filter(rule="brute_force", subject_client_id=client.client_id).exists()

    def test_a_direct_write_is_evaluated_after_commit_without_waiting_for_beat(
        self, make_client, clock, settings, django_capture_on_commit_callbacks
    ):
        from analytics.store import token_events_write

        settings.USE_REDIS = False
        client, _ = make_client()
        with django_capture_on_commit_callbacks() as callbacks:
            token_events_write(failed_attempts(client.client_id))
        assert not self.brute_force_alert(client)  # nothing before the commit
        for callback in callbacks:
            callback()
        assert self.brute_force_alert(client)

    def test_the_redis_down_fallback_announces_nothing(
        self, make_client, clock, settings, django_capture_on_commit_callbacks
    ):
        # Its broker is the unreachable Redis: enqueueing would hold up the token request.
        from analytics.store import token_events_write

        settings.USE_REDIS = True
        client, _ = make_client()
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            token_events_write(failed_attempts(client.client_id))
        assert callbacks == []
        assert not self.brute_force_alert(client)
