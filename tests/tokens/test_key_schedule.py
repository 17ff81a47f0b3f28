"""Signing-key rotation schedule: the daily task, the lead time, the page."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from jwt import PyJWKSet

from audit.models import AdminAction
from audit.services import Actor
from keyward.celery import app as celery_app
from tokens import tasks
from tokens.keys import key_ring, key_schedule
from tokens.models import NEXT_KEY_PUBLISH_LEAD, RETIRED_KEY_PUBLISHED_FOR, SigningKey
from tokens.services import (
    RotationTooEarly,
    ScheduleOutcome,
    signing_key_publish_next,
    signing_key_rotate,
    signing_keys_rotate_if_due,
)

T0 = datetime(2026, 3, 2, 3, 7, tzinfo=UTC)
DAY = timedelta(days=1)
LEAD = NEXT_KEY_PUBLISH_LEAD
JWKS_MAX_AGE = timedelta(seconds=300)


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(T0, tick=False)
    return time_machine


@pytest.fixture
def interval(settings):
    settings.KEYWARD_SIGNING_KEY_ROTATION_DAYS = 90
    return timedelta(days=90)


def run():
    return signing_keys_rotate_if_due()


def rotations() -> int:
    return AdminAction.objects.filter(action="signing_key.rotate").count()


def kids(jwks: dict) -> set[str]:
    return {key["kid"] for key in jwks["keys"]}


def verify(token: str, jwks: dict, settings) -> dict:
    """Validate as a resource server holding `jwks` (PyJWT, iss/aud/exp checked)."""
    keys = {key.key_id: key for key in PyJWKSet.from_dict(jwks).keys}
    header = jwt.get_unverified_header(token)
    return jwt.decode(
        token,
        keys[header["kid"]].key,
        algorithms=[header["alg"]],
        audience=settings.KEYWARD_DEFAULT_AUDIENCE,
        issuer=settings.KEYWARD_ISSUER,
    )


@pytest.mark.django_db
class TestRotateIfDue:
    def test_it_publishes_a_next_key_when_there_is_none(self, clock, interval):
        key_ring()
        result = run()
        assert result.outcome == ScheduleOutcome.PUBLISHED_NEXT
        upcoming = SigningKey.objects.get(status="next")
        assert result.published == upcoming
        assert upcoming.promotable_at() == T0 + LEAD
        action = AdminAction.objects.get(action="signing_key.publish_next")
        assert action.actor_label == "system"
        assert action.target_id == upcoming.kid

    def test_it_does_not_rotate_before_the_interval(self, clock, interval):
        key_ring()
        run()
        active = SigningKey.objects.get(status="active")
        clock.move_to(T0 + interval - timedelta(seconds=1))
        assert run().outcome == ScheduleOutcome.NOT_DUE
        assert SigningKey.objects.get(status="active") == active
        assert rotations() == 0

    def test_it_rotates_after_the_interval(self, clock, interval):
        key_ring()
        run()
        old = SigningKey.objects.get(status="active")
        upcoming = SigningKey.objects.get(status="next")
        clock.move_to(T0 + interval)
        result = run()
        assert result.outcome == ScheduleOutcome.ROTATED
        assert result.rotation.active.kid == upcoming.kid
        old.refresh_from_db()
        assert old.status == SigningKey.Status.RETIRED
        assert old.retired_at == T0 + interval
        assert SigningKey.objects.get(status="next").created_at == T0 + interval
        action = AdminAction.objects.get(action="signing_key.rotate")
        assert action.actor_label == "system"
        assert action.after["forced"] is False
        assert action.after["retired"] == old.kid

    def test_it_waits_until_the_next_key_is_published_long_enough(self, clock, interval):
        key_ring()  # an active key, no next one (the state after first use)
        clock.move_to(T0 + interval + DAY)
        assert run().outcome == ScheduleOutcome.PUBLISHED_NEXT
        published = T0 + interval + DAY
        clock.move_to(published + LEAD - timedelta(seconds=1))
        assert run().outcome == ScheduleOutcome.WAITING_FOR_NEXT_KEY
        assert rotations() == 0
        clock.move_to(published + LEAD)
        assert run().outcome == ScheduleOutcome.ROTATED
        assert rotations() == 1

    def test_it_is_idempotent(self, clock, interval):
        key_ring()
        run()
        clock.move_to(T0 + interval)
        assert run().outcome == ScheduleOutcome.ROTATED
        assert run().outcome == ScheduleOutcome.NOT_DUE
        assert rotations() == 1
        assert SigningKey.objects.filter(status="active").count() == 1
        assert SigningKey.objects.filter(status="next").count() == 1

    def test_it_uses_the_configured_interval(self, clock, settings):
        settings.KEYWARD_SIGNING_KEY_ROTATION_DAYS = 7
        key_ring()
        run()
        clock.move_to(T0 + timedelta(days=6))
        assert run().outcome == ScheduleOutcome.NOT_DUE
        clock.move_to(T0 + timedelta(days=7))
        assert run().outcome == ScheduleOutcome.ROTATED

    def test_zero_days_turns_the_rotation_off_but_keeps_a_next_key(self, clock, settings):
        settings.KEYWARD_SIGNING_KEY_ROTATION_DAYS = 0
        key_ring()
        assert run().outcome == ScheduleOutcome.PUBLISHED_NEXT
        clock.move_to(T0 + timedelta(days=1000))
        assert run().outcome == ScheduleOutcome.DISABLED
        assert rotations() == 0

    def test_it_does_not_activate_keys_on_an_unused_install(self, clock, interval):
        assert run().outcome == ScheduleOutcome.PUBLISHED_NEXT
        clock.move_to(T0 + interval)
        assert run().outcome == ScheduleOutcome.NO_ACTIVE_KEY
        assert not SigningKey.objects.filter(status="active").exists()

    def test_new_next_keys_use_the_configured_algorithm(self, clock, interval, settings):
        key_ring()
        settings.KEYWARD_SIGNING_ALGORITHM = "ES256"
        run()
        assert SigningKey.objects.get(status="next").algorithm == "ES256"


@pytest.mark.django_db
class TestTheJwksThroughTheSchedule:
    def test_every_token_verifies_with_any_jwks_a_validator_may_have_cached(
        self, clock, settings, http, get_token, registered
    ):
        """Six-hourly steps over three rotations, with the longest token lifetime.

        At each step a validator caches the JWKS, the task runs a JWKS cache period later,
        a token is issued: it must verify with that cached JWKS; every earlier token must
        verify with the current JWKS until its exp. And each key must have been seen in the
        JWKS for the lead time when it first signs.
        """
        settings.KEYWARD_SIGNING_KEY_ROTATION_DAYS = 3
        client, _secret = registered
        client.access_token_lifetime = 86400
        client.save()
        get_token()  # first use: the first key
        first_seen: dict[str, datetime] = {}
        first_signed: dict[str, datetime] = {}
        issued: list[tuple[str, int]] = []

        def fetch_jwks() -> dict:
            jwks = http.get("/.well-known/jwks.json").json()
            for kid in kids(jwks):
                first_seen.setdefault(kid, datetime.now(UTC))
            return jwks

        for _step in range(4 * 10):  # ten days
            cached = fetch_jwks()
            clock.shift(JWKS_MAX_AGE - timedelta(seconds=1))
            run()
            fetch_jwks()
            token = get_token()["access_token"]
            claims = verify(token, cached, settings)
            kid = jwt.get_unverified_header(token)["kid"]
            first_signed.setdefault(kid, datetime.now(UTC))
            issued.append((token, claims["exp"]))
            current = fetch_jwks()
            now = datetime.now(UTC).timestamp()
            for old_token, exp in issued:
                if exp > now:
                    assert verify(old_token, current, settings)["exp"] == exp
            clock.shift(timedelta(hours=6) - JWKS_MAX_AGE + timedelta(seconds=1))

        assert rotations() == 3
        assert len(first_signed) == 4
        for kid, signed_at in first_signed.items():
            if kid != SigningKey.objects.order_by("created_at").first().kid:  # bootstrap key
                assert signed_at - first_seen[kid] >= LEAD

    def test_a_retired_key_leaves_the_jwks_after_its_last_token_expired(
        self, clock, interval, http, get_token
    ):
        key_ring()
        run()
        old = SigningKey.objects.get(status="active")
        clock.move_to(T0 + interval)
        run()
        old.refresh_from_db()
        assert old.unpublish_at() == old.retired_at + RETIRED_KEY_PUBLISHED_FOR
        assert timedelta(seconds=86400) + JWKS_MAX_AGE <= RETIRED_KEY_PUBLISHED_FOR
        clock.move_to(old.unpublish_at())
        assert old.kid in kids(http.get("/.well-known/jwks.json").json())
        clock.shift(1)
        assert old.kid not in kids(http.get("/.well-known/jwks.json").json())


@pytest.mark.django_db
class TestManualRotationLeadTime:
    def test_it_refuses_before_the_next_key_is_published_long_enough(self, clock):
        key_ring()
        upcoming = signing_key_publish_next(actor=Actor.cli(), algorithm="ES256")
        clock.shift(LEAD - timedelta(seconds=1))
        with pytest.raises(RotationTooEarly) as refused:
            signing_key_rotate(actor=Actor.cli(), algorithm="ES256")
        assert refused.value.possible_at == T0 + LEAD
        assert "2026-03-03 03:12:00 UTC" in str(refused.value)
        assert SigningKey.objects.get(status="next") == upcoming
        assert rotations() == 0

    def test_a_refused_rotation_publishes_a_missing_next_key(self, clock):
        key_ring()
        with pytest.raises(RotationTooEarly):
            signing_key_rotate(actor=Actor.cli(), algorithm="ES256")
        upcoming = SigningKey.objects.get(status="next")
        assert upcoming.algorithm == "ES256"
        assert AdminAction.objects.get(action="signing_key.publish_next").actor_label == "cli"
        clock.shift(LEAD)
        assert signing_key_rotate(actor=Actor.cli(), algorithm="ES256").active == upcoming

    def test_force_rotates_at_once_and_is_audited_as_forced(self, clock):
        key_ring()
        signing_key_publish_next(actor=Actor.cli(), algorithm="ES256")
        rotation = signing_key_rotate(actor=Actor.cli(), algorithm="ES256", force=True)
        assert rotation.forced
        assert AdminAction.objects.get(action="signing_key.rotate").after["forced"] is True

    def test_the_command_publishes_a_next_key_without_rotating(self, clock, capsys):
        key_ring()
        call_command("rotate_signing_key", "--publish-next", "--algorithm", "ES256")
        upcoming = SigningKey.objects.get(status=SigningKey.Status.NEXT)
        assert f"next: {upcoming.kid} (ES256), may sign from" in capsys.readouterr().out
        assert rotations() == 0
        clock.shift(LEAD)
        call_command("rotate_signing_key")  # the lead time has passed: no --force needed
        assert "(forced)" not in capsys.readouterr().out

    def test_a_rotation_after_the_lead_time_is_not_forced(self, clock):
        key_ring()
        signing_key_publish_next(actor=Actor.cli(), algorithm="ES256")
        clock.shift(LEAD)
        assert not signing_key_rotate(actor=Actor.cli(), algorithm="ES256", force=True).forced

    def test_the_first_key_is_still_created_and_activated_at_once(self, clock):
        rotation = signing_key_rotate(actor=Actor.cli(), algorithm="ES256")
        assert rotation.active.status == SigningKey.Status.ACTIVE
        assert rotation.retired is None and not rotation.forced

    def test_the_command_refuses_with_a_clear_message(self, clock):
        key_ring()
        with pytest.raises(CommandError, match=r"may sign from 2026-03-03 03:12:00 UTC.*--force"):
            call_command("rotate_signing_key")
        assert rotations() == 0

    def test_the_command_rotates_with_force(self, clock, capsys):
        key_ring()
        call_command("rotate_signing_key", "--force")
        assert "(forced)" in capsys.readouterr().out
        assert AdminAction.objects.get(action="signing_key.rotate").after["forced"] is True


@pytest.mark.django_db
class TestKeysPageSchedule:
    def test_it_shows_the_schedule(self, clock, interval, admin_client, admin_user):
        key_ring()
        run()
        clock.move_to(T0 + interval)
        run()
        admin_client.force_login(admin_user)  # the session from T0 has expired
        page = " ".join(admin_client.get(reverse("tokens:keys")).content.decode().split())
        page = re.sub(r"</?time[^>]*>", "", page)  # moments are <time> elements
        schedule = key_schedule()
        assert "every <strong>90 days</strong>" in page
        assert "activated 2026-05-31 03:07 UTC" in page
        assert schedule.next_rotation_at == T0 + 2 * interval
        assert "due <strong>2026-08-29 03:07 UTC</strong>" in page
        assert "published since 2026-05-31 03:07 UTC" in page
        assert "may sign from <strong>2026-06-01 03:12 UTC</strong>" in page
        assert "in the JWKS until 2026-06-01 03:12 UTC" in page

    def test_it_asks_for_the_confirmation_only_before_the_lead_time(self, clock, admin_client):
        key_ring()
        signing_key_publish_next(actor=Actor.cli(), algorithm="ES256")
        assert 'name="force"' in admin_client.get(reverse("tokens:keys")).content.decode()
        clock.shift(LEAD)
        assert 'name="force"' not in admin_client.get(reverse("tokens:keys")).content.decode()

    def test_a_rotation_before_the_lead_time_is_refused(self, clock, admin_client):
        key_ring()
        signing_key_publish_next(actor=Actor.cli(), algorithm="ES256")
        response = admin_client.post(reverse("tokens:rotate"), {"algorithm": "ES256"}, follow=True)
        assert "Not rotated" in response.content.decode()
        assert "may sign from 2026-03-03 03:12:00 UTC" in response.content.decode()
        assert rotations() == 0

    def test_the_confirmation_forces_the_rotation(self, clock, admin_client):
        key_ring()
        signing_key_publish_next(actor=Actor.cli(), algorithm="ES256")
        data = {"algorithm": "ES256", "force": "accept-cache-miss"}
        response = admin_client.post(reverse("tokens:rotate"), data, follow=True)
        assert "Rotated (forced" in response.content.decode()
        action = AdminAction.objects.get(action="signing_key.rotate")
        assert action.actor_label == "ada-admin"
        assert action.after["forced"] is True

    def test_after_the_lead_time_it_rotates_without_confirmation(
        self, clock, admin_client, admin_user
    ):
        key_ring()
        signing_key_publish_next(actor=Actor.cli(), algorithm="ES256")
        clock.shift(LEAD)
        admin_client.force_login(admin_user)  # the session from before the lead time expired
        admin_client.post(reverse("tokens:rotate"), {"algorithm": "ES256"})
        assert AdminAction.objects.get(action="signing_key.rotate").after["forced"] is False


@pytest.mark.django_db
class TestTask:
    def test_it_runs_through_celery(self, clock, interval, settings):
        before = celery_app.conf.task_always_eager
        celery_app.conf.task_always_eager = True
        try:
            key_ring()
            assert tasks.rotate_signing_keys_if_due.delay().get() == "published_next"
            clock.move_to(T0 + interval)
            assert tasks.rotate_signing_keys_if_due.delay().get() == "rotated"
        finally:
            celery_app.conf.task_always_eager = before
        assert AdminAction.objects.get(action="signing_key.rotate").actor_label == "system"

    def test_the_beat_schedule_runs_it_daily(self, settings):
        entry = settings.CELERY_BEAT_SCHEDULE["rotate-signing-keys"]
        assert entry["task"] == "tokens.tasks.rotate_signing_keys_if_due"
        assert entry["schedule"].hour == {3} and entry["schedule"].day_of_week == set(range(7))


@pytest.mark.django_db(transaction=True)
class TestRacingRuns:
    def test_two_concurrent_runs_rotate_once(self, interval):
        if connection.vendor != "postgresql":
            pytest.skip("row locks need PostgreSQL")
        key_ring()
        signing_keys_rotate_if_due()
        # Age both keys in the database instead of travelling: threads share no clock mock.
        now = timezone.now()
        SigningKey.objects.filter(status="active").update(activated_at=now - interval)
        SigningKey.objects.filter(status="next").update(created_at=now - LEAD)
        barrier = threading.Barrier(2)
        outcomes: list[ScheduleOutcome] = []

        def worker():
            from django.db import connection as thread_connection

            try:
                barrier.wait()
                outcomes.append(signing_keys_rotate_if_due().outcome)
            finally:
                thread_connection.close()

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(outcomes) == [ScheduleOutcome.NOT_DUE, ScheduleOutcome.ROTATED]
        assert rotations() == 1
        assert SigningKey.objects.filter(status="retired").count() == 1
