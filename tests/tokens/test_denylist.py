"""The denylist survives Redis losing it: RevokedToken is the truth, Redis a cache trusted only
while its completeness marker is there (tokens/sink.py)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tokens import sink
from tokens.models import RevokedToken
from tokens.sink import (
    DENYLIST_COMPLETE_KEY,
    DENYLIST_PREFIX,
    DENYLIST_REBUILD_LOCK,
    denylist_contains,
    denylist_mark_complete,
    denylist_rebuild,
    redis_connection,
)
from tokens.tasks import verify_denylist

from .conftest import INTROSPECT_URL, REVOKE_URL, basic

DEAD_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def introspector(make_client):
    return make_client("gateway", can_introspect=True)


@pytest.fixture
def revoke(post_form, registered):
    def call(token: str):
        client, secret = registered
        response = post_form(
            REVOKE_URL, {"token": token}, HTTP_AUTHORIZATION=basic(client.client_id, secret)
        )
        assert response.status_code == 200
        return RevokedToken.objects.get().jti

    return call


@pytest.fixture
def active(post_form, introspector):
    """Is the token active, as introspection with client credentials answers?"""

    def call(token: str) -> bool:
        client, secret = introspector
        response = post_form(
            INTROSPECT_URL, {"token": token}, HTTP_AUTHORIZATION=basic(client.client_id, secret)
        )
        assert response.status_code == 200
        return response.json()["active"]

    return call


@pytest.fixture
def bearer_status(post_form):
    """The status introspection answers when the token is the caller's own credential."""

    def call(token: str) -> int:
        return post_form(
            INTROSPECT_URL, {"token": token}, HTTP_AUTHORIZATION=f"Bearer {token}"
        ).status_code

    return call


@pytest.fixture
def make_revoked():
    def make(jti: str, *, minutes: int, **fields) -> RevokedToken:
        expires_at = timezone.now() + timezone.timedelta(minutes=minutes)
        return RevokedToken.objects.create(
            jti=jti, client_id="svc", expires_at=expires_at, **fields
        )

    return make


@pytest.fixture
def complete(redis_client):
    """Start from a trusted cache, as a Redis that has been up for a while."""
    redis_client.set(DENYLIST_COMPLETE_KEY, 1)


@pytest.fixture
def redis_down(settings, monkeypatch):
    """Call as a context: Redis unreachable inside, back (at once, no backoff) after."""
    monkeypatch.setattr(sink, "DOWN_BACKOFF", 0.0)
    url = settings.REDIS_URL

    class Down:
        def __enter__(self):
            settings.REDIS_URL = DEAD_REDIS

        def __exit__(self, *exc):
            settings.REDIS_URL = url

    return Down()


@pytest.mark.django_db
class TestRedisRestart:
    def test_it_keeps_a_token_revoked_after_redis_lost_its_data(
        self, complete, revoke, get_token, active, redis_client
    ):
        token = get_token()["access_token"]
        revoke(token)
        redis_client.flushdb()  # a restart without persistence
        assert active(token) is False

    def test_it_refuses_the_revoked_token_as_a_bearer_after_redis_lost_its_data(
        self, complete, revoke, get_token, bearer_status, redis_client
    ):
        token = get_token()["access_token"]
        revoke(token)
        redis_client.flushdb()
        assert bearer_status(token) == 401

    def test_the_first_check_rebuilds_and_later_checks_are_served_by_redis(
        self, complete, revoke, get_token, active, redis_client, django_assert_num_queries
    ):
        token = get_token()["access_token"]
        jti = revoke(token)
        redis_client.flushdb()
        assert active(token) is False
        assert redis_client.exists(DENYLIST_COMPLETE_KEY, DENYLIST_PREFIX + jti) == 2
        with django_assert_num_queries(0):
            assert denylist_contains(jti) is True
            assert denylist_contains("never-revoked") is False

    def test_a_token_never_revoked_stays_active_while_untrusted(
        self, get_token, active, redis_client
    ):
        redis_client.delete(DENYLIST_COMPLETE_KEY)
        assert active(get_token()["access_token"]) is True


@pytest.mark.django_db
class TestRevokedWhileRedisDown:
    def test_the_revoking_process_drops_the_marker_when_redis_is_back(
        self, complete, revoke, get_token, active, bearer_status, redis_down, redis_client
    ):
        token = get_token()["access_token"]
        with redis_down:
            jti = revoke(token)
        assert RevokedToken.objects.get(jti=jti).missing_from_redis
        assert active(token) is False
        assert bearer_status(token) == 401
        # The check that found the marker gone rebuilt the cache.
        assert redis_client.exists(DENYLIST_COMPLETE_KEY, DENYLIST_PREFIX + jti) == 2
        assert not RevokedToken.objects.get(jti=jti).missing_from_redis

    def test_the_beat_task_repairs_it_for_processes_that_missed_the_outage(
        self, complete, revoke, get_token, active, redis_down, redis_client
    ):
        token = get_token()["access_token"]
        with redis_down:
            jti = revoke(token)
        sink.sink_reset()  # another process: it never saw Redis down
        assert verify_denylist() == "rebuilt"
        assert redis_client.exists(DENYLIST_COMPLETE_KEY, DENYLIST_PREFIX + jti) == 2
        assert active(token) is False
        assert verify_denylist() == "complete"

    def test_the_beat_task_drops_the_marker_even_when_it_cannot_rebuild(
        self, complete, revoke, get_token, active, redis_down, redis_client
    ):
        token = get_token()["access_token"]
        with redis_down:
            revoke(token)
        sink.sink_reset()
        redis_client.set(DENYLIST_REBUILD_LOCK, "another process", ex=60)
        assert verify_denylist() == "busy"
        assert not redis_client.exists(DENYLIST_COMPLETE_KEY)
        assert active(token) is False  # from the database while the other one rebuilds

    def test_the_bearer_path_drops_the_marker_too(
        self, complete, revoke, get_token, bearer_status, redis_down, redis_client
    ):
        token = get_token()["access_token"]
        with redis_down:
            revoke(token)
        assert bearer_status(token) == 401


@pytest.mark.django_db
class TestRedisDownAtIntrospection:
    def test_it_reads_revocations_from_the_database(
        self, complete, revoke, get_token, active, bearer_status, redis_down
    ):
        token = get_token()["access_token"]
        revoke(token)
        with redis_down:
            assert active(token) is False
            assert bearer_status(token) == 401


@pytest.mark.django_db
class TestRebuild:
    def test_it_copies_live_rows_and_clears_their_flags(self, redis_client, make_revoked):
        redis_client.flushdb()
        make_revoked("live", minutes=5, missing_from_redis=True)
        make_revoked("gone", minutes=-1)
        assert denylist_rebuild() == 1
        assert redis_client.exists(DENYLIST_PREFIX + "live", DENYLIST_COMPLETE_KEY) == 2
        assert not redis_client.exists(DENYLIST_PREFIX + "gone")
        assert 0 < redis_client.ttl(DENYLIST_PREFIX + "live") <= 301
        assert not RevokedToken.objects.filter(missing_from_redis=True).exists()

    def test_only_one_process_rebuilds_at_a_time(self, redis_client, make_revoked):
        redis_client.flushdb()
        make_revoked("live", minutes=5)
        redis_client.set(DENYLIST_REBUILD_LOCK, "another process", ex=60)
        assert denylist_rebuild() is None
        assert not redis_client.exists(DENYLIST_COMPLETE_KEY)
        assert denylist_contains("live") is True  # read from the database meanwhile

    def test_it_takes_the_marker_back_for_a_row_flagged_during_the_copy(
        self, redis_client, make_revoked
    ):
        make_revoked("copied", minutes=5, missing_from_redis=True)
        make_revoked("late", minutes=5, missing_from_redis=True)  # committed after the read
        assert not denylist_mark_complete(redis_connection(), copied_flagged=["copied"])
        assert not redis_client.exists(DENYLIST_COMPLETE_KEY)
        flagged = RevokedToken.objects.filter(missing_from_redis=True)
        assert list(flagged.values_list("jti", flat=True)) == ["late"]

    def test_an_expired_flagged_row_does_not_keep_the_cache_untrusted(
        self, redis_client, make_revoked
    ):
        make_revoked("gone", minutes=-1, missing_from_redis=True)
        assert denylist_rebuild() == 0
        assert verify_denylist() == "complete"

    def test_it_does_nothing_without_redis(self, settings):
        settings.REDIS_URL = DEAD_REDIS
        assert denylist_rebuild() is None
        assert verify_denylist() == "no-redis"
