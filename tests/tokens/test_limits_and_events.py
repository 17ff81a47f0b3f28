from __future__ import annotations

import orjson
import pytest

from analytics.models import TokenEvent
from audit.events import COLUMNS
from tokens import sink
from tokens.buffer import EVENT_BUFFER_KEY

from .conftest import EVENT_SCHEMA, INTROSPECT_URL, REVOKE_URL, TOKEN_URL, basic


def _token(post_form, client, secret, **extra):
    return post_form(
        TOKEN_URL,
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic(client.client_id, secret),
        **extra,
    )


@pytest.mark.django_db
class TestEvents:
    def test_it_records_a_success(self, post_form, registered, events, redis_client):
        client, secret = registered
        response = _token(post_form, client, secret, HTTP_USER_AGENT="probe/1.0")
        [raw] = redis_client.lrange(EVENT_BUFFER_KEY, 0, -1)
        # Every field is written, even where a default would do.
        assert list(orjson.loads(raw)) == list(COLUMNS)
        [event] = events()
        assert event.endpoint == "token"
        assert event.client_id == client.client_id
        assert event.client_known is True
        assert event.secret_id == client.secrets.get().pk
        assert event.outcome == "success"
        assert event.reason == "ok"
        assert event.source_ip == "127.0.0.1"
        assert event.user_agent == "probe/1.0"
        assert event.scopes_granted == response.json()["scope"]
        assert event.jti
        assert event.status_code == 200
        assert event.duration_ms > 0

    @pytest.mark.parametrize(
        ("make_request", "reason", "status"),
        [
            (lambda c, s: {"client": (c.client_id, "kwsec_bad")}, "bad_secret", 401),
            (lambda c, s: {"client": ("ghost", s)}, "unknown_client", 401),
            (
                lambda c, s: {"client": (c.client_id, s), "scope": "billing:read"},
                "invalid_scope",
                400,
            ),
            (
                lambda c, s: {"client": (c.client_id, s), "grant_type": "password"},
                "unsupported_grant_type",
                400,
            ),
            (lambda c, s: {"client": (c.client_id, s), "grant_type": ""}, "invalid_request", 400),
        ],
    )
    def test_it_records_the_reason_of_a_failure(
        self, post_form, registered, events, make_request, reason, status
    ):
        client, secret = registered
        spec = make_request(client, secret)
        form = {"grant_type": spec.get("grant_type", "client_credentials")}
        if "scope" in spec:
            form["scope"] = spec["scope"]
        response = post_form(TOKEN_URL, form, HTTP_AUTHORIZATION=basic(*spec["client"]))
        assert response.status_code == status
        [event] = events()
        assert event.outcome == "failure"
        assert event.reason == reason
        assert event.status_code == status
        assert event.client_id == spec["client"][0]

    def test_it_records_revoked_expired_disabled_and_ip_reasons(
        self, post_form, make_client, events, http
    ):
        from django.utils import timezone

        revoked, s1 = make_client()
        revoked.secrets.update(revoked_at=timezone.now())
        expired, s2 = make_client()
        expired.secrets.update(expires_at=timezone.now())
        disabled, s3 = make_client()
        type(disabled).objects.filter(pk=disabled.pk).update(status="disabled")
        fenced, s4 = make_client(allowed_networks=["10.0.0.0/8"])
        for client, secret in [(revoked, s1), (expired, s2), (disabled, s3), (fenced, s4)]:
            assert _token(post_form, client, secret).status_code == 401
        assert [event.reason for event in events()] == [
            "revoked_secret",
            "expired_secret",
            "disabled_client",
            "ip_not_allowed",
        ]
        assert all(event.secret_id for event in events())

    def test_it_records_introspection_and_revocation(
        self, post_form, registered, get_token, events
    ):
        client, secret = registered
        token = get_token()["access_token"]
        auth = basic(client.client_id, secret)
        post_form(INTROSPECT_URL, {"token": token}, HTTP_AUTHORIZATION=auth)
        post_form(REVOKE_URL, {"token": token}, HTTP_AUTHORIZATION=auth)
        post_form(INTROSPECT_URL, {"token": token})
        endpoints = [(e.endpoint, e.reason, e.status_code) for e in events()]
        assert endpoints == [
            ("token", "ok", 200),
            ("introspect", "ok", 200),
            ("revoke", "ok", 200),
            ("introspect", "invalid_client", 401),
        ]

    def test_every_event_validates_against_the_documented_schema(
        self, post_form, registered, get_token, events, redis_client, settings
    ):
        client, secret = registered
        auth = basic(client.client_id, secret)
        token = get_token()["access_token"]
        _token(post_form, client, "kwsec_bad")
        _token(post_form, client, secret, HTTP_USER_AGENT="x" * 400, REMOTE_ADDR="2001:db8::7")
        post_form(INTROSPECT_URL, {"token": token}, HTTP_AUTHORIZATION=auth)
        post_form(REVOKE_URL, {"token": token}, HTTP_AUTHORIZATION=auth)
        settings.KEYWARD_RATE_LIMIT_PER_CLIENT = 0
        assert _token(post_form, client, secret).status_code == 429
        raw = redis_client.lrange(EVENT_BUFFER_KEY, 0, -1)
        assert len(raw) == 6
        for item in raw:
            EVENT_SCHEMA.validate(orjson.loads(item))

    def test_it_records_a_get(self, http, events):
        http.get(TOKEN_URL)
        [event] = events()
        assert event.status_code == 405
        assert event.reason == "invalid_request"


@pytest.mark.django_db
class TestRateLimits:
    def test_it_limits_per_client(self, post_form, registered, settings, events):
        settings.KEYWARD_RATE_LIMIT_PER_CLIENT = 3
        client, secret = registered
        statuses = [_token(post_form, client, secret).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        response = _token(post_form, client, secret)
        assert 0 < int(response["Retry-After"]) <= settings.KEYWARD_RATE_LIMIT_WINDOW
        assert response.json()["error"] == "temporarily_unavailable"
        assert events()[-1].reason == "rate_limited"
        assert events()[-1].status_code == 429
        assert events()[-1].jti == ""

    def test_it_limits_per_ip(self, post_form, make_client, settings):
        settings.KEYWARD_RATE_LIMIT_PER_IP = 2
        statuses = [_token(post_form, *make_client()).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]

    def test_it_blocks_an_ip_after_failed_authentications(self, post_form, registered, settings):
        settings.KEYWARD_RATE_LIMIT_FAILURES_PER_IP = 3
        client, secret = registered
        failures = [_token(post_form, client, "kwsec_guess").status_code for _ in range(3)]
        assert failures == [401, 401, 401]
        # Now even the right secret is refused, so a correct guess is not revealed.
        assert _token(post_form, client, secret).status_code == 429
        other_ip = _token(post_form, client, secret, REMOTE_ADDR="192.0.2.50")
        assert other_ip.status_code == 200

    def test_it_limits_introspection_per_caller(self, post_form, registered, get_token, settings):
        client, secret = registered
        token = get_token()["access_token"]
        settings.KEYWARD_RATE_LIMIT_INTROSPECT_PER_CALLER = 2
        statuses = [
            post_form(
                INTROSPECT_URL, {"token": token}, HTTP_AUTHORIZATION=basic(client.client_id, secret)
            ).status_code
            for _ in range(3)
        ]
        assert statuses == [200, 200, 429]

    def test_it_limits_fishing_for_tokens_harder(self, post_form, registered, get_token, settings):
        client, secret = registered
        token = get_token()["access_token"]
        settings.KEYWARD_RATE_LIMIT_INTROSPECT_INACTIVE_PER_CALLER = 2
        auth = basic(client.client_id, secret)

        def introspect(value: str) -> int:
            return post_form(INTROSPECT_URL, {"token": value}, HTTP_AUTHORIZATION=auth).status_code

        assert [introspect(f"guess-{n}") for n in range(3)] == [200, 200, 429]
        # Real tokens are not slowed down by the fishing limit.
        assert introspect(token) == 200


@pytest.mark.django_db
class TestRedisDown:
    @pytest.fixture
    def dead_redis(self, settings):
        settings.REDIS_URL = "redis://127.0.0.1:1/0"
        sink.sink_reset()
        yield
        sink.sink_reset()

    def test_it_keeps_serving_and_writes_events_to_the_database(
        self, post_form, registered, dead_redis, caplog
    ):
        client, secret = registered
        assert _token(post_form, client, secret).status_code == 200
        assert _token(post_form, client, "kwsec_bad").status_code == 401
        reasons = sorted(TokenEvent.objects.values_list("reason", flat=True))
        assert reasons == ["bad_secret", "ok"]
        assert "Redis unavailable" in caplog.text

    def test_revocation_falls_back_to_the_database(
        self, post_form, registered, get_token, dead_redis
    ):
        client, secret = registered
        token = get_token()["access_token"]
        auth = basic(client.client_id, secret)
        assert post_form(REVOKE_URL, {"token": token}, HTTP_AUTHORIZATION=auth).status_code == 200
        client.can_introspect = True
        response = post_form(INTROSPECT_URL, {"token": token}, HTTP_AUTHORIZATION=auth)
        assert response.json() == {"active": False}


@pytest.mark.django_db
class TestEmbeddedMode:
    def test_it_limits_in_the_local_cache_and_writes_events_to_the_database(
        self, post_form, registered, settings
    ):
        settings.REDIS_URL = ""
        settings.KEYWARD_RATE_LIMIT_PER_CLIENT = 1
        client, secret = registered
        assert _token(post_form, client, secret).status_code == 200
        assert _token(post_form, client, secret).status_code == 429
        assert sorted(TokenEvent.objects.values_list("reason", flat=True)) == ["ok", "rate_limited"]
