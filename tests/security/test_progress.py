"""Rotation progress on the client page (clients/selectors.py)."""

from __future__ import annotations

from datetime import timedelta

from analytics.models import TokenEvent
from audit.services import Actor
from clients.selectors import client_secret_progress, client_valid_secret_count
from security import services

from .conftest import T0, days, record_event


class TestSecretProgress:
    def test_it_says_an_old_secret_is_still_in_use_with_time_and_ip(self, prod_client, clock):
        client, _ = prod_client
        old = client.secrets.get()
        clock.shift(days(1))
        services.client_secret_rotate(actor=Actor.cli(), client=client, grace=days(7))
        record_event(old, at=T0 + days(1) + timedelta(minutes=5), ip="10.1.2.3")
        record_event(old, at=T0 + days(1) + timedelta(minutes=7), ip="10.1.2.3")
        record_event(old, at=T0 + timedelta(hours=1))  # before the rotation: not counted
        clock.shift(timedelta(minutes=10))
        current, older = client_secret_progress(client=client)
        assert current.is_current and current.uses_since_rotation == 0
        assert current.status == "current secret — not used yet"
        assert older.uses_since_rotation == 2 and older.in_use and not older.safe_to_revoke
        assert older.status == "in use — last used 3\xa0minutes ago from 10.1.2.3"

    def test_it_says_an_unused_old_secret_is_safe_to_revoke(self, prod_client, clock):
        client, _ = prod_client
        old = client.secrets.get()
        record_event(old, at=T0 + timedelta(hours=1))
        clock.shift(days(1))
        new, _ = services.client_secret_rotate(actor=Actor.cli(), client=client, grace=days(7))
        record_event(new, at=T0 + days(1) + timedelta(minutes=1), ip="10.9.9.9")
        record_event(old, at=T0 + days(1) + timedelta(minutes=2), outcome="failure")
        clock.shift(timedelta(hours=2))
        current, older = client_secret_progress(client=client)
        assert current.uses_since_rotation == 1
        assert current.status.startswith("current secret — last used 1\xa0hour")
        assert current.status.endswith("from 10.9.9.9")
        assert older.uses_since_rotation == 0 and older.safe_to_revoke
        assert older.status == "unused since rotation — safe to revoke"
        assert older.last_used_at == T0 + timedelta(hours=1)

    def test_it_calls_an_old_secret_safe_once_the_consumer_switched_to_the_new_one(
        self, prod_client, clock
    ):
        client, _ = prod_client
        old = client.secrets.get()
        clock.shift(days(1))
        new, _ = services.client_secret_rotate(actor=Actor.cli(), client=client, grace=days(7))
        # The consumer keeps using the old secret during the overlap, then switches.
        record_event(old, at=T0 + days(1) + timedelta(minutes=1))
        record_event(new, at=T0 + days(1) + timedelta(minutes=2))
        record_event(new, at=T0 + days(1) + timedelta(minutes=3))
        clock.shift(timedelta(minutes=10))
        _current, older = client_secret_progress(client=client)
        assert older.uses_since_rotation == 1
        assert not older.in_use and older.safe_to_revoke
        assert older.status == "not used since the new secret took over — safe to revoke"
        # A use of the old secret after the switch means someone still holds it.
        record_event(old, at=T0 + days(1) + timedelta(minutes=4), ip="10.1.2.3")
        _current, older = client_secret_progress(client=client)
        assert older.in_use and not older.safe_to_revoke

    def test_it_waits_one_token_lifetime_before_calling_a_quiet_old_secret_safe(
        self, prod_client, clock
    ):
        client, _ = prod_client  # tokens live 3600 s
        clock.shift(days(1))
        services.client_secret_rotate(actor=Actor.cli(), client=client, grace=days(7))
        clock.shift(timedelta(minutes=10))
        _current, older = client_secret_progress(client=client)
        assert not older.in_use and not older.safe_to_revoke
        assert older.status.startswith("no use since rotation yet")
        clock.shift(timedelta(hours=1))
        _current, older = client_secret_progress(client=client)
        assert older.safe_to_revoke
        assert older.status == "unused since rotation — safe to revoke"

    def test_it_says_just_now_for_a_use_under_a_minute_ago(self, prod_client, clock):
        client, _ = prod_client
        old = client.secrets.get()
        record_event(old, at=T0 + timedelta(seconds=10), ip="10.1.2.3")
        clock.shift(timedelta(seconds=30))
        (current,) = client_secret_progress(client=client)
        assert current.status == "current secret — last used just now from 10.1.2.3"

    def test_it_labels_revoked_and_expired_secrets(self, prod_client, clock):
        client, _ = prod_client
        services.client_secret_rotate(actor=Actor.cli(), client=client, grace=timedelta(0))
        newest = client.secrets.first()
        services.client_secret_rotate(actor=Actor.cli(), client=client, grace=days(1))
        services.client_secret_revoke(actor=Actor.cli(), secret=newest)
        clock.shift(days(2))
        statuses = [row.status for row in client_secret_progress(client=client)]
        assert statuses[1] == "revoked 2\xa0days ago"
        assert statuses[2] == "expired 2\xa0days ago"

    def test_it_counts_only_successes_of_the_clients_own_secrets(self, prod_client, clock):
        client, _ = prod_client
        secret = client.secrets.get()
        record_event(secret)
        TokenEvent.objects.filter(secret_id=secret.pk).update(secret_id=secret.pk + 1000)
        [row] = client_secret_progress(client=client)
        assert row.uses_since_rotation == 0


class TestValidSecretCount:
    def test_it_counts_neither_revoked_nor_expired(self, prod_client, clock):
        client, _ = prod_client
        services.client_secret_rotate(actor=Actor.cli(), client=client, grace=days(1))
        services.client_secret_rotate(actor=Actor.cli(), client=client, grace=days(3))
        assert client_valid_secret_count(client=client) == 3
        services.client_secret_revoke(actor=Actor.cli(), secret=client.secrets.first())
        assert client_valid_secret_count(client=client) == 2
        clock.shift(days(2))
        assert client_valid_secret_count(client=client) == 1
