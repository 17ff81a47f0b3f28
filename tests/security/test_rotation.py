"""Rotation, expiry policy and revocation emails (security/services.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from audit.models import AdminAction
from audit.services import Actor
from clients import services as client_services
from clients.models import Client, ClientSecret
from clients.secrets import secret_hash
from security import services
from security.models import NotificationLog, SecretPolicy

from .conftest import OWNER, SECURITY, T0, days


def by_plain(plain: str) -> ClientSecret:
    return ClientSecret.objects.get(secret_hash=secret_hash(plain))


class TestPolicyExpiry:
    @pytest.mark.parametrize(
        ("environment", "max_age"),
        [("production", days(90)), ("staging", days(180)), ("development", None)],
    )
    def test_it_gives_new_secrets_the_environment_default(
        self, make_client, clock, environment, max_age
    ):
        _client, plain = make_client(environment=environment)
        expected = T0 + max_age if max_age else None
        assert by_plain(plain).expires_at == expected

    def test_it_follows_an_edited_policy(self, make_client, clock):
        services.secret_policy_update(
            actor=Actor.cli(), environment="development", max_secret_age_days=30
        )
        _client, plain = make_client(environment="development")
        assert by_plain(plain).expires_at == T0 + days(30)

    def test_it_keeps_an_explicit_expiry(self, make_client, clock):
        client, _ = make_client(environment="production")
        secret, _ = client_services.client_secret_create(
            actor=Actor.cli(), client=client, expires_at=T0 + days(5)
        )
        assert secret.expires_at == T0 + days(5)


class TestSecretPolicyUpdate:
    def test_it_saves_and_audits_only_changed_fields(self, db, admin_user):
        actor = Actor(label=admin_user.username, user=admin_user)
        policy = services.secret_policy_update(
            actor=actor,
            environment="staging",
            max_secret_age_days=60,
            auto_disable_dormant_after_days=None,
        )
        assert policy.max_secret_age_days == 60 and policy.updated_by == admin_user
        row = AdminAction.objects.get(action="policy.update")
        assert (row.target_type, row.target_id) == ("secret_policy", "staging")
        assert row.before == {"max_secret_age_days": 180}
        assert row.after == {"max_secret_age_days": 60}
        assert SecretPolicy.for_environment("staging").max_secret_age_days == 60

    def test_it_writes_nothing_when_nothing_changed(self, db):
        services.secret_policy_update(
            actor=Actor.cli(), environment="production", max_secret_age_days=90
        )
        assert not AdminAction.objects.filter(action="policy.update").exists()

    def test_it_refuses_out_of_range_values(self, db):
        with pytest.raises(ValidationError):
            services.secret_policy_update(
                actor=Actor.cli(), environment="production", max_secret_age_days=0
            )
        assert SecretPolicy.objects.get(environment="production").max_secret_age_days == 90

    def test_it_refuses_unknown_fields(self, db):
        with pytest.raises(ValueError, match="Not editable"):
            services.secret_policy_update(actor=Actor.cli(), environment="production", x=1)


class TestRotate:
    def test_it_creates_a_new_secret_and_sets_the_old_expiry_to_now_plus_grace(
        self, prod_client, clock
    ):
        client, old_plain = prod_client
        clock.shift(days(10))
        new, new_plain = services.client_secret_rotate(
            actor=Actor.cli(), client=client, grace=timedelta(hours=24)
        )
        now = T0 + days(10)
        assert new_plain != old_plain and by_plain(new_plain) == new
        assert new.expires_at == now + days(90)  # production policy
        assert by_plain(old_plain).expires_at == now + timedelta(hours=24)

    def test_both_secrets_are_valid_during_the_overlap_and_only_the_new_after(
        self, prod_client, clock
    ):
        client, old_plain = prod_client
        _new, new_plain = services.client_secret_rotate(
            actor=Actor.cli(), client=client, grace=timedelta(hours=1)
        )
        clock.shift(timedelta(minutes=59))
        assert by_plain(old_plain).is_valid() and by_plain(new_plain).is_valid()
        clock.shift(timedelta(minutes=1))
        assert not by_plain(old_plain).is_valid() and by_plain(new_plain).is_valid()

    def test_grace_zero_expires_the_old_secret_at_once(self, prod_client, clock):
        client, old_plain = prod_client
        services.client_secret_rotate(actor=Actor.cli(), client=client, grace=timedelta(0))
        assert by_plain(old_plain).expires_at == T0
        assert not by_plain(old_plain).is_valid()

    def test_it_never_extends_an_earlier_expiry(self, prod_client, clock):
        client, old_plain = prod_client
        ClientSecret.objects.filter(client=client).update(expires_at=T0 + timedelta(hours=2))
        services.client_secret_rotate(actor=Actor.cli(), client=client, grace=days(7))
        assert by_plain(old_plain).expires_at == T0 + timedelta(hours=2)

    def test_it_leaves_revoked_and_expired_secrets_alone(self, prod_client, clock):
        client, old_plain = prod_client
        old = by_plain(old_plain)
        services.client_secret_revoke(actor=Actor.cli(), secret=old)
        services.client_secret_rotate(actor=Actor.cli(), client=client, grace=days(1))
        assert by_plain(old_plain).expires_at == T0 + days(90)

    def test_it_refuses_a_fourth_valid_secret_and_writes_nothing(self, prod_client, clock):
        client, _ = prod_client
        for _ in range(2):
            services.client_secret_rotate(actor=Actor.cli(), client=client, grace=days(7))
        assert client.secrets.count() == 3
        before = AdminAction.objects.count()
        with pytest.raises(ValidationError, match="already has 3 valid secrets"):
            services.client_secret_rotate(actor=Actor.cli(), client=client, grace=days(7))
        assert client.secrets.count() == 3 and AdminAction.objects.count() == before

    def test_it_allows_rotation_at_the_limit_when_the_old_secrets_expire_now(
        self, prod_client, clock
    ):
        client, _ = prod_client
        for _ in range(2):
            services.client_secret_rotate(actor=Actor.cli(), client=client, grace=days(7))
        new, _ = services.client_secret_rotate(actor=Actor.cli(), client=client, grace=days(0))
        valid = [s for s in client.secrets.all() if s.is_valid()]
        assert valid == [new]

    def test_it_counts_secrets_whose_grace_ran_out_as_gone(self, prod_client, clock):
        client, _ = prod_client
        for _ in range(2):
            services.client_secret_rotate(actor=Actor.cli(), client=client, grace=days(1))
        clock.shift(days(2))
        services.client_secret_rotate(actor=Actor.cli(), client=client, grace=days(1))

    @pytest.mark.parametrize("grace", [timedelta(seconds=-1), days(90) + timedelta(seconds=1)])
    def test_it_refuses_a_grace_outside_0_to_90_days(self, prod_client, grace):
        client, _ = prod_client
        with pytest.raises(ValidationError, match="0 to 90 days"):
            services.client_secret_rotate(actor=Actor.cli(), client=client, grace=grace)
        assert client.secrets.count() == 1

    def test_it_audits_with_hints_only(self, prod_client, clock):
        client, old_plain = prod_client
        new, new_plain = services.client_secret_rotate(
            actor=Actor.cli(), client=client, grace=days(1)
        )
        row = AdminAction.objects.get(action="secret.rotate")
        assert row.actor_label == "cli" and row.target_id == client.client_id
        assert row.after["new_secret"]["hint"] == new.hint
        assert row.after["old_secrets"][0]["expires_at"] == (T0 + days(1)).isoformat()
        assert row.after["grace_seconds"] == 86400
        dumped = str(row.before) + str(row.after)
        for plain in (old_plain, new_plain):
            assert plain not in dumped and secret_hash(plain) not in dumped

    def test_it_emails_the_owner_and_security_after_commit(
        self, prod_client, clock, mailbox, django_capture_on_commit_callbacks
    ):
        client, _ = prod_client
        with django_capture_on_commit_callbacks(execute=True):
            new, new_plain = services.client_secret_rotate(
                actor=Actor.cli(), client=client, grace=days(1)
            )
        [message] = mailbox
        assert sorted(message.to) == sorted([OWNER, SECURITY])
        assert "Secret rotated for Billing" in message.subject
        assert new.hint in message.body and new_plain not in message.body
        assert new_plain not in message.alternatives[0][0]
        log = NotificationLog.objects.get(kind=NotificationLog.Kind.SECRET_ROTATED)
        assert log.status == NotificationLog.Status.SENT and log.attempts == 1
        assert log.client == client

    def test_a_failed_rotation_queues_no_email(self, prod_client, mailbox):
        client, _ = prod_client
        with pytest.raises(ValidationError):
            services.client_secret_rotate(actor=Actor.cli(), client=client, grace=days(91))
        assert not NotificationLog.objects.exists()


class TestRevokeNotification:
    def test_it_emails_on_revoke_and_says_when_no_secret_is_left(
        self, prod_client, mailbox, django_capture_on_commit_callbacks
    ):
        client, plain = prod_client
        with django_capture_on_commit_callbacks(execute=True):
            services.client_secret_revoke(actor=Actor.cli(), secret=by_plain(plain))
        [message] = mailbox
        assert "Secret revoked" in message.subject
        assert "no valid secret left" in message.body

    def test_it_skips_blank_recipients(self, make_client, settings, mailbox):
        settings.KEYWARD_SECURITY_EMAIL = ""
        client, plain = make_client(owner_email="")
        services.client_secret_revoke(actor=Actor.cli(), secret=by_plain(plain))
        assert not NotificationLog.objects.exists()

    def test_revoking_twice_notifies_once(self, prod_client, mailbox):
        _client, plain = prod_client
        services.client_secret_revoke(actor=Actor.cli(), secret=by_plain(plain))
        services.client_secret_revoke(actor=Actor.cli(), secret=by_plain(plain))
        assert NotificationLog.objects.count() == 1


def test_the_default_policies_exist_after_migrating(db):
    rows = dict(SecretPolicy.objects.values_list("environment", "max_secret_age_days"))
    assert rows == {"production": 90, "staging": 180, "development": None}
    assert Client.Environment.values
