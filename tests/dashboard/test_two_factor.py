"""Two-factor sign-in: enrolment, the verify step, recovery codes, KEYWARD_REQUIRE_2FA, and
an admin's reset (dashboard/two_factor.py, keyward/middleware.py TwoFactorMiddleware)."""

from __future__ import annotations

import io
import re
import time
from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import Client as BrowserClient
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken

from audit.models import AdminAction
from audit.services import Actor
from dashboard import two_factor
from dashboard.models import SealedTOTPDevice
from tests.conftest import PASSWORD, logged_in

LOGIN_URL = reverse("login")
VERIFY_URL = reverse("dashboard:two_factor_verify")
SETUP_URL = reverse("dashboard:two_factor")
CONFIRM_URL = reverse("dashboard:two_factor_confirm")
CODES_URL = reverse("dashboard:two_factor_recovery_codes")
OVERVIEW_URL = reverse("dashboard:overview")


@pytest.fixture(autouse=True)
def _no_throttle(settings):
    # django-otp delays the next try after a wrong code (1 s, 2 s, 4 s, ...); the tests that
    # are not about it would otherwise have to wait. TestVerifyRateLimit turns it back on.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


def code_now(device: SealedTOTPDevice) -> str:
    """The app's current code, by django-otp's own TOTP implementation."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits)
    totp.time = time.time()
    return f"{totp.token():06d}"


def enrol(user) -> tuple[SealedTOTPDevice, list[str]]:
    device = two_factor.two_factor_enrolment_start(user=user)
    codes = two_factor.two_factor_enrol(actor=Actor.cli(), device=device, code=code_now(device))
    assert codes is not None
    device.refresh_from_db()
    return device, codes


def password_login(user) -> BrowserClient:
    browser = BrowserClient()
    response = browser.post(LOGIN_URL, {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return browser


def next_step(clock) -> None:
    # A TOTP code is accepted once per 30-second step (django-otp's replay guard).
    clock.shift(timedelta(seconds=30))


def audit_rows(action: str) -> list[AdminAction]:
    return list(AdminAction.objects.filter(action=action))


@pytest.fixture
def clock():
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


class TestEnrolment:
    def test_it_shows_a_qr_code_and_the_key_without_caching(self, viewer_client):
        response = viewer_client.get(SETUP_URL)
        html = response.content.decode()
        assert response.status_code == 200
        assert 'src="data:image/svg+xml;base64,' in html
        assert 'id="totp-key"' in html
        assert "no-store" in response["Cache-Control"]

    def test_it_refuses_a_wrong_code(self, viewer, viewer_client):
        viewer_client.get(SETUP_URL)
        device = SealedTOTPDevice.objects.get(user=viewer)
        wrong = f"{(int(code_now(device)) + 1) % 1_000_000:06d}"
        response = viewer_client.post(CONFIRM_URL, {"code": wrong})
        assert response.status_code == 400
        assert "does not match" in response.content.decode()
        device.refresh_from_db()
        assert not device.confirmed
        assert not audit_rows("user.two_factor_enrol")

    def test_it_confirms_with_the_right_code_and_shows_recovery_codes_once(
        self, viewer, viewer_client
    ):
        viewer_client.get(SETUP_URL)
        device = SealedTOTPDevice.objects.get(user=viewer)
        response = viewer_client.post(CONFIRM_URL, {"code": code_now(device)})
        html = response.content.decode()
        assert response.status_code == 200 and "only once" in html
        assert "no-store" in response["Cache-Control"]
        device.refresh_from_db()
        assert device.confirmed
        (row,) = audit_rows("user.two_factor_enrol")
        assert row.target_id == "vera-viewer" and row.actor_label == "vera-viewer"
        assert row.after == {"two_factor": True, "recovery_codes": 10}
        shown = re.findall(r"\b[a-z2-7]{5}-[a-z2-7]{5}\b", html)
        assert len(shown) == 10
        stored = set(StaticToken.objects.values_list("token", flat=True))
        assert not stored & {code.replace("-", "") for code in shown} and len(stored) == 10
        assert (
            "Recovery codes left: <strong>10</strong>"
            in viewer_client.get(SETUP_URL).content.decode()
        )

    def test_it_keeps_the_totp_key_sealed_at_rest(self, viewer):
        device, _codes = enrol(viewer)
        assert device.bin_key.hex() not in device.key
        assert len(device.bin_key) == 20

    def test_the_new_codes_replace_the_old_ones(self, viewer, viewer_client, clock):
        _device, old = enrol(viewer)
        response = viewer_client.post(CODES_URL)
        assert (
            response.status_code == 200
            and "Your earlier codes no longer work" in response.content.decode()
        )
        assert len(audit_rows("user.two_factor_recovery_codes")) == 1
        browser = password_login(viewer)
        assert browser.post(VERIFY_URL, {"code": old[0]}).status_code == 400


class TestSignIn:
    def test_a_password_alone_does_not_open_the_console(self, viewer, clock):
        device, _codes = enrol(viewer)
        browser = password_login(viewer)
        response = browser.get(OVERVIEW_URL)
        assert response.status_code == 302
        assert response["Location"].startswith(VERIFY_URL)
        for url in (reverse("audit:list"), reverse("clients:list"), SETUP_URL):
            assert browser.get(url)["Location"].startswith(VERIFY_URL)
        assert browser.post(CODES_URL)["Location"].startswith(VERIFY_URL)
        htmx = browser.get(reverse("audit:list"), HTTP_HX_REQUEST="true")
        assert htmx.status_code == 204 and htmx["HX-Redirect"].startswith(VERIFY_URL)
        next_step(clock)
        response = browser.post(VERIFY_URL, {"code": code_now(device), "next": "/audit/"})
        assert response.status_code == 302 and response["Location"] == "/audit/"
        assert browser.get(OVERVIEW_URL).status_code == 200

    def test_the_verify_page_asks_for_a_code(self, viewer, clock):
        enrol(viewer)
        response = password_login(viewer).get(VERIFY_URL)
        assert response.status_code == 200 and 'name="code"' in response.content.decode()

    def test_a_recovery_code_works_once(self, viewer, clock):
        _device, codes = enrol(viewer)
        browser = password_login(viewer)
        assert browser.post(VERIFY_URL, {"code": codes[0].upper()}).status_code == 302
        assert browser.get(OVERVIEW_URL).status_code == 200
        (row,) = audit_rows("user.two_factor_recovery_code_use")
        assert row.after == {"recovery_codes_left": 9}
        again = password_login(viewer)
        assert again.post(VERIFY_URL, {"code": codes[0]}).status_code == 400
        assert again.get(OVERVIEW_URL).status_code == 302

    def test_users_without_an_authenticator_are_not_asked(self, viewer):
        browser = password_login(viewer)
        assert browser.get(OVERVIEW_URL).status_code == 200
        assert logged_in(viewer).get(OVERVIEW_URL).status_code == 200

    def test_the_token_service_ignores_a_half_signed_in_session(self, viewer, clock):
        enrol(viewer)
        browser = password_login(viewer)
        assert browser.get(reverse("tokens:jwks")).status_code == 200
        assert browser.get(reverse("healthz_web")).status_code == 200

    def test_a_code_from_another_users_app_is_refused(self, viewer, operator, clock):
        enrol(viewer)
        other, _codes = enrol(operator)
        next_step(clock)
        browser = password_login(viewer)
        assert browser.post(VERIFY_URL, {"code": code_now(other)}).status_code == 400


class TestRequire2FA:
    def test_an_admin_without_an_authenticator_must_enrol(self, admin_user, settings, clock):
        settings.KEYWARD_REQUIRE_2FA = True
        browser = password_login(admin_user)
        response = browser.get(reverse("dashboard:users"))
        assert response.status_code == 302 and response["Location"].startswith(SETUP_URL)
        page = browser.get(SETUP_URL).content.decode()
        assert "Your role needs two-factor sign-in" in page
        device = SealedTOTPDevice.objects.get(user=admin_user)
        assert browser.post(CONFIRM_URL, {"code": code_now(device)}).status_code == 200
        assert browser.get(reverse("dashboard:users")).status_code == 200

    def test_it_does_not_ask_other_roles(self, operator, settings):
        settings.KEYWARD_REQUIRE_2FA = True
        assert password_login(operator).get(OVERVIEW_URL).status_code == 200

    def test_it_is_off_by_default_in_development(self, admin_user, settings):
        assert settings.KEYWARD_REQUIRE_2FA is False
        assert password_login(admin_user).get(OVERVIEW_URL).status_code == 200


class TestReset:
    def test_an_admin_resets_another_users_two_factor(self, admin_client, viewer, clock):
        enrol(viewer)
        response = admin_client.post(
            reverse("dashboard:user_two_factor_reset", args=["vera-viewer"])
        )
        assert response.status_code == 302
        assert not SealedTOTPDevice.objects.filter(user=viewer).exists()
        assert not StaticToken.objects.filter(device__user=viewer).exists()
        (row,) = audit_rows("user.two_factor_reset")
        assert row.actor_label == "ada-admin" and row.target_id == "vera-viewer"
        assert row.before == {"two_factor": True}
        assert password_login(viewer).get(OVERVIEW_URL).status_code == 200

    def test_a_reset_admin_must_enrol_again_when_required(
        self, admin_client, operator, settings, clock
    ):
        settings.KEYWARD_REQUIRE_2FA = True
        operator.groups.clear()
        operator.groups.add(Group.objects.get_or_create(name="admin")[0])
        enrol(operator)
        admin_client.post(reverse("dashboard:user_two_factor_reset", args=["otto-operator"]))
        browser = password_login(operator)
        assert browser.get(OVERVIEW_URL)["Location"].startswith(SETUP_URL)

    def test_it_shows_the_state_and_a_reset_button_on_the_users_page(
        self, admin_client, viewer, clock
    ):
        enrol(viewer)
        html = admin_client.get(reverse("dashboard:users")).content.decode()
        assert reverse("dashboard:user_two_factor_reset", args=["vera-viewer"]) in html

    def test_an_operator_cannot_reset(self, operator_client, viewer, clock):
        enrol(viewer)
        url = reverse("dashboard:user_two_factor_reset", args=["vera-viewer"])
        assert operator_client.post(url).status_code == 403
        assert SealedTOTPDevice.objects.filter(user=viewer, confirmed=True).exists()
        assert not audit_rows("user.two_factor_reset")

    def test_it_refuses_get(self, admin_client, viewer):
        url = reverse("dashboard:user_two_factor_reset", args=["vera-viewer"])
        assert admin_client.get(url).status_code == 405

    def test_an_admin_cannot_reset_their_own(self, admin_client, admin_user, clock):
        enrol(admin_user)
        url = reverse("dashboard:user_two_factor_reset", args=["ada-admin"])
        admin_client.post(url, HTTP_HX_REQUEST="true")
        assert SealedTOTPDevice.objects.filter(user=admin_user, confirmed=True).exists()


class TestVerifyRateLimit:
    @pytest.fixture(autouse=True)
    def _throttle(self, settings):
        settings.OTP_TOTP_THROTTLE_FACTOR = 1
        settings.OTP_STATIC_THROTTLE_FACTOR = 1

    def test_a_wrong_code_delays_the_next_try(self, viewer, clock):
        device, _codes = enrol(viewer)
        next_step(clock)
        browser = password_login(viewer)
        assert browser.post(VERIFY_URL, {"code": "000000"}).status_code == 400
        assert browser.post(VERIFY_URL, {"code": code_now(device)}).status_code == 400
        clock.shift(timedelta(seconds=2.5))
        assert browser.post(VERIFY_URL, {"code": code_now(device)}).status_code == 302

    def test_five_wrong_codes_end_the_login(self, viewer, clock):
        device, _codes = enrol(viewer)
        browser = password_login(viewer)
        for n in range(5):
            clock.shift(timedelta(seconds=20))  # past the throttle: the session limit bites
            response = browser.post(VERIFY_URL, {"code": f"{n:06d}"})
        assert response.status_code in (302, 429)
        assert len(audit_rows("user.two_factor_failure")) == 5
        assert browser.get(OVERVIEW_URL)["Location"].startswith(LOGIN_URL)
        next_step(clock)
        late = browser.post(VERIFY_URL, {"code": code_now(device)})
        assert late.status_code == 302 and late["Location"].startswith(LOGIN_URL)

    def test_wrong_codes_count_as_failed_logins(self, viewer, clock):
        enrol(viewer)
        browser = password_login(viewer)
        for _ in range(3):
            clock.shift(timedelta(seconds=20))
            browser.post(VERIFY_URL, {"code": "000000"})
        (attempt,) = AccessAttempt.objects.filter(username="vera-viewer")
        assert attempt.failures_since_start == 3
        assert "000000" not in attempt.post_data


class TestResetCommand:
    def test_it_resets_from_the_command_line(self, viewer, clock):
        enrol(viewer)
        out = io.StringIO()
        call_command("reset_two_factor", "vera-viewer", stdout=out)
        assert "reset" in out.getvalue()
        assert not SealedTOTPDevice.objects.filter(user=viewer).exists()
        (row,) = audit_rows("user.two_factor_reset")
        assert row.actor_label == "cli"

    def test_it_refuses_an_unknown_user_in_one_line(self, db):
        with pytest.raises(CommandError) as refused:
            call_command("reset_two_factor", "nobody")
        assert refused.value.returncode == 2
