"""The stale-secret scan (security/scan.py): findings, idempotence, digests, auto-actions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from audit.models import AdminAction
from audit.services import Actor
from clients import services as client_services
from clients.models import Client, ClientSecret
from security import services
from security.models import NotificationLog, SecretFinding
from security.scan import secrets_scan
from security.tasks import scan_stale_secrets

from .conftest import OWNER, SECURITY, T0, days, record_event

Kind = SecretFinding.Kind


def open_kinds(client: Client) -> set[str]:
    return set(
        SecretFinding.objects.filter(client=client, state="open").values_list("kind", flat=True)
    )


@pytest.fixture
def scan(django_capture_on_commit_callbacks):
    """Runs the scan and the email tasks it queues (eager Celery, locmem backend)."""

    def run(**kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return secrets_scan(**kwargs)

    return run


class TestFindings:
    def test_a_fresh_client_in_use_has_no_findings(self, prod_client, clock, scan):
        client, _ = prod_client
        clock.shift(days(20))
        record_event(client.secrets.get())
        assert scan().opened == 0 and open_kinds(client) == set()

    def test_it_flags_a_secret_older_than_the_policy_allows(self, prod_client, clock, scan):
        client, _ = prod_client
        ClientSecret.objects.filter(client=client).update(expires_at=None)  # from before a policy
        clock.shift(days(91))
        record_event(client.secrets.get())
        scan()
        finding = SecretFinding.objects.get(client=client, kind=Kind.SECRET_TOO_OLD)
        assert finding.details["max_age_days"] == 90 and finding.secret == client.secrets.get()

    def test_it_flags_a_secret_expiring_within_14_days(self, prod_client, clock, scan):
        client, _ = prod_client
        clock.shift(days(75))  # expires at 90 days: 15 days left
        record_event(client.secrets.get())
        scan()
        assert Kind.SECRET_EXPIRING not in open_kinds(client)
        clock.shift(days(1))
        scan()
        finding = SecretFinding.objects.get(client=client, kind=Kind.SECRET_EXPIRING)
        assert finding.details["expires_at"] == (T0 + days(90)).isoformat()

    def test_a_replaced_secret_running_out_its_grace_is_not_expiring(
        self, prod_client, clock, scan
    ):
        client, _ = prod_client
        clock.shift(days(1))
        services.client_secret_rotate(actor=Actor.cli(), client=client, grace=days(7))
        scan()
        assert Kind.SECRET_EXPIRING not in open_kinds(client)

    def test_it_flags_a_secret_never_used_for_30_days(self, prod_client, clock, scan):
        client, _ = prod_client
        clock.shift(days(29))
        scan()
        assert Kind.SECRET_UNUSED not in open_kinds(client)
        clock.shift(days(2))
        scan()
        finding = SecretFinding.objects.get(kind=Kind.SECRET_UNUSED)
        assert finding.details["last_used_at"] is None

    def test_it_flags_a_secret_last_used_over_30_days_ago(self, prod_client, clock, scan):
        client, _ = prod_client
        record_event(client.secrets.get(), at=T0 + days(5))
        clock.shift(days(36))
        scan()
        finding = SecretFinding.objects.get(kind=Kind.SECRET_UNUSED)
        assert finding.details["last_used_at"] == (T0 + days(5)).isoformat()

    def test_it_flags_a_dormant_client(self, prod_client, clock, scan):
        client, _ = prod_client
        record_event(client.secrets.get(), at=T0 + days(1))
        clock.shift(days(31))
        scan()
        assert Kind.CLIENT_DORMANT not in open_kinds(client)
        clock.shift(days(1))
        scan()
        finding = SecretFinding.objects.get(kind=Kind.CLIENT_DORMANT)
        assert finding.secret is None and finding.client == client

    def test_disabled_clients_are_not_dormant(self, prod_client, clock, scan):
        client, _ = prod_client
        client_services.client_set_status(actor=Actor.cli(), client=client, status="disabled")
        clock.shift(days(40))
        scan()
        assert Kind.CLIENT_DORMANT not in open_kinds(client)

    def test_revoked_and_expired_secrets_raise_nothing(self, prod_client, clock, scan):
        client, _ = prod_client
        services.client_secret_rotate(actor=Actor.cli(), client=client, grace=timedelta(0))
        services.client_secret_revoke(actor=Actor.cli(), secret=client.secrets.first())
        clock.shift(days(45))
        scan()
        assert open_kinds(client) == {Kind.CLIENT_DORMANT}


class TestIdempotence:
    def test_a_second_run_records_and_mails_nothing_new(self, prod_client, clock, scan, mailbox):
        client, _ = prod_client
        clock.shift(days(31))
        first = scan()
        assert first.opened == 2 and first.emails == 2  # owner digest + security digest
        assert len(mailbox) == 2
        second = scan()
        assert (second.opened, second.notified, second.emails) == (0, 0, 0)
        assert len(mailbox) == 2
        assert SecretFinding.objects.count() == 2
        assert NotificationLog.objects.filter(kind="findings_digest").count() == 2

    def test_it_mails_one_digest_per_owner_listing_all_their_new_findings(
        self, make_client, clock, scan, mailbox
    ):
        make_client("A", owner_email=OWNER)
        make_client("B", owner_email=OWNER)
        make_client("C", owner_email="other@example.com")
        clock.shift(days(31))
        scan()
        to = sorted(tuple(message.to) for message in mailbox)
        assert to == sorted([(OWNER,), (SECURITY,), ("other@example.com",)])
        owner_mail = next(m for m in mailbox if m.to == [OWNER])
        assert "4 new secret findings" in owner_mail.subject
        assert "A (development)" in owner_mail.body and "B (development)" in owner_mail.body
        assert "C (" not in owner_mail.body
        security_mail = next(m for m in mailbox if m.to == [SECURITY])
        assert "6 new secret findings" in security_mail.subject

    def test_only_new_findings_are_mailed_later(
        self, prod_client, make_client, clock, scan, mailbox
    ):
        clock.shift(days(31))
        scan()
        mailbox.clear()
        make_client("Late", owner_email=OWNER)
        clock.shift(days(31))
        scan()
        owner_mail = next(m for m in mailbox if m.to == [OWNER])
        assert "Late" in owner_mail.subject and "Billing" not in owner_mail.body

    def test_it_updates_details_when_the_state_changes(self, prod_client, clock, scan):
        client, _ = prod_client
        clock.shift(days(31))
        scan()
        finding = SecretFinding.objects.get(kind=Kind.SECRET_UNUSED)
        # Used once, 30 days and an hour ago: still unused for 30 days, but last_used_at moved.
        record_event(client.secrets.get(), at=T0 + days(1) - timedelta(hours=1))
        clock.shift(timedelta(hours=1))
        result = scan()
        finding.refresh_from_db()
        assert result.updated == 2  # the unused secret and the dormant client
        assert finding.state == "open"
        assert finding.details["last_used_at"] is not None
        assert finding.last_seen_at == T0 + days(31) + timedelta(hours=1)
        assert finding.notified_at == T0 + days(31)  # not mailed again

    def test_it_closes_a_finding_when_fixed(self, prod_client, clock, scan, mailbox):
        client, _ = prod_client
        clock.shift(days(31))
        scan()
        record_event(client.secrets.get())
        clock.shift(timedelta(hours=1))
        result = scan()
        assert result.closed == 2
        closed = SecretFinding.objects.filter(state="closed")
        assert closed.count() == 2
        assert {f.closed_at for f in closed} == {T0 + days(31) + timedelta(hours=1)}
        assert open_kinds(client) == set()

    def test_a_problem_that_returns_is_a_new_finding(self, prod_client, clock, scan):
        client, _ = prod_client
        clock.shift(days(31))
        scan()
        record_event(client.secrets.get())
        scan()
        clock.shift(days(31))
        result = scan()
        assert result.opened == 2 and result.notified == 2
        assert SecretFinding.objects.filter(kind=Kind.SECRET_UNUSED).count() == 2

    def test_the_open_unique_constraint_refuses_duplicates(self, prod_client, clock):
        from django.db import IntegrityError, transaction

        client, _ = prod_client
        SecretFinding.objects.create(kind=Kind.CLIENT_DORMANT, client=client)
        with pytest.raises(IntegrityError), transaction.atomic():
            SecretFinding.objects.create(kind=Kind.CLIENT_DORMANT, client=client)
        SecretFinding.objects.create(kind=Kind.CLIENT_DORMANT, client=client, state="closed")

    def test_the_task_runs_the_scan(self, prod_client, clock, django_capture_on_commit_callbacks):
        clock.shift(days(31))
        with django_capture_on_commit_callbacks(execute=True):
            result = scan_stale_secrets.apply().get()
        assert result["opened"] == 2


class TestAutoActions:
    def test_they_are_off_by_default(self, prod_client, clock, scan):
        client, _ = prod_client
        services.client_secret_rotate(actor=Actor.cli(), client=client, grace=days(80))
        clock.shift(days(400))
        result = scan()
        assert (result.auto_revoked, result.auto_disabled) == (0, 0)
        client.refresh_from_db()
        assert client.is_active()

    def test_it_revokes_a_replaced_secret_unused_for_n_days(
        self, prod_client, clock, scan, mailbox
    ):
        client, old_plain = prod_client
        old = client.secrets.get()
        services.secret_policy_update(
            actor=Actor.cli(), environment="production", auto_revoke_replaced_after_days=7
        )
        clock.shift(days(1))
        new, _ = services.client_secret_rotate(actor=Actor.cli(), client=client, grace=days(30))
        record_event(new)
        clock.shift(days(6))
        assert scan().auto_revoked == 0
        clock.shift(days(1))
        mailbox.clear()
        assert scan().auto_revoked == 1
        old.refresh_from_db()
        new.refresh_from_db()
        assert old.is_revoked() and not new.is_revoked()
        row = AdminAction.objects.get(action="secret.revoke")
        assert row.actor_label == "system" and row.after["secret_id"] == old.pk
        [message] = [m for m in mailbox if "automatically" in m.body]
        assert "revoked a secret" in message.subject and old.hint in message.body
        assert sorted(message.to) == sorted([OWNER, SECURITY])
        assert not NotificationLog.objects.filter(kind="secret_revoked").exists()

    def test_it_keeps_a_replaced_secret_that_is_still_used(self, prod_client, clock, scan):
        client, _ = prod_client
        old = client.secrets.get()
        services.secret_policy_update(
            actor=Actor.cli(), environment="production", auto_revoke_replaced_after_days=7
        )
        services.client_secret_rotate(actor=Actor.cli(), client=client, grace=days(30))
        clock.shift(days(3))
        record_event(old)
        clock.shift(days(10))
        assert scan().auto_revoked == 0

    def test_it_disables_a_client_dormant_for_n_days(self, prod_client, clock, scan, mailbox):
        client, _ = prod_client
        services.secret_policy_update(
            actor=Actor.cli(), environment="production", auto_disable_dormant_after_days=60
        )
        record_event(client.secrets.get(), at=T0 + days(1))
        clock.shift(days(60))
        assert scan().auto_disabled == 0
        clock.shift(days(1) + timedelta(seconds=1))
        mailbox.clear()
        assert scan().auto_disabled == 1
        client.refresh_from_db()
        assert not client.is_active()
        row = AdminAction.objects.get(action="client.disable")
        assert row.actor_label == "system" and row.actor is None
        [message] = [m for m in mailbox if "automatically" in m.body]
        assert "disabled the client" in message.subject
        assert NotificationLog.objects.get(kind="auto_action").client == client
        assert scan().auto_disabled == 0

    def test_other_environments_are_untouched(self, make_client, clock, scan):
        client, _ = make_client(environment="staging")
        services.secret_policy_update(
            actor=Actor.cli(), environment="production", auto_disable_dormant_after_days=1
        )
        clock.shift(days(5))
        assert scan().auto_disabled == 0
