from __future__ import annotations

import time

import pytest
import time_machine
from django.utils import timezone

from tokens.models import RevokedToken
from tokens.services import revocations_purge
from tokens.sink import DENYLIST_PREFIX
from tokens.tasks import purge_expired_revocations

from .conftest import REVOKE_URL, basic


@pytest.fixture
def revoke(post_form, registered):
    def call(token: str, caller=None, **form):
        client, secret = caller or registered
        return post_form(
            REVOKE_URL, {"token": token, **form}, HTTP_AUTHORIZATION=basic(client.client_id, secret)
        )

    return call


@pytest.mark.django_db
class TestRevocation:
    def test_it_revokes_its_own_token(self, revoke, get_token, redis_client):
        token = get_token()["access_token"]
        response = revoke(token)
        assert response.status_code == 200
        assert response["Cache-Control"] == "no-store"
        row = RevokedToken.objects.get()
        assert row.expires_at > timezone.now()
        ttl = redis_client.ttl(DENYLIST_PREFIX + row.jti)
        assert 3500 < ttl <= 3602

    def test_it_accepts_a_type_hint(self, revoke, get_token):
        assert (
            revoke(get_token()["access_token"], token_type_hint="access_token").status_code == 200
        )

    def test_it_answers_200_for_unknown_and_garbage_tokens(self, revoke):
        assert revoke("not-a-token").status_code == 200
        assert revoke("a.b.c").status_code == 200
        assert not RevokedToken.objects.exists()

    def test_it_answers_200_for_an_expired_token_without_storing_it(self, revoke, get_token):
        token = get_token()["access_token"]
        with time_machine.travel(time.time() + 3700, tick=False):
            assert revoke(token).status_code == 200
        assert not RevokedToken.objects.exists()

    def test_it_refuses_another_clients_token(self, revoke, get_token, make_client):
        token = get_token()["access_token"]
        response = revoke(token, caller=make_client("other"))
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"
        assert not RevokedToken.objects.exists()

    def test_it_refuses_an_unauthenticated_client(self, post_form, get_token):
        response = post_form(REVOKE_URL, {"token": get_token()["access_token"]})
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"

    def test_it_refuses_a_wrong_secret(self, revoke, get_token, registered):
        response = revoke(get_token()["access_token"], caller=(registered[0], "kwsec_nope"))
        assert response.status_code == 401

    def test_it_requires_the_token(self, post_form, registered):
        client, secret = registered
        response = post_form(REVOKE_URL, {}, HTTP_AUTHORIZATION=basic(client.client_id, secret))
        assert response.json()["error"] == "invalid_request"

    def test_it_answers_get_with_405(self, http):
        assert http.get(REVOKE_URL).status_code == 405

    def test_it_is_idempotent(self, revoke, get_token):
        token = get_token()["access_token"]
        assert revoke(token).status_code == revoke(token).status_code == 200
        assert RevokedToken.objects.count() == 1


@pytest.mark.django_db
class TestPurge:
    def test_it_deletes_expired_rows_and_restores_live_ones_to_redis(self, redis_client):
        now = timezone.now()
        RevokedToken.objects.create(jti="old", client_id="c", expires_at=now)
        RevokedToken.objects.create(
            jti="live", client_id="c", expires_at=now + timezone.timedelta(minutes=5)
        )
        assert purge_expired_revocations() == 1
        assert list(RevokedToken.objects.values_list("jti", flat=True)) == ["live"]
        assert redis_client.exists(DENYLIST_PREFIX + "live")

    def test_it_is_idempotent(self):
        assert revocations_purge() == 0
