"""Console login limits: spraying from one address, guessing one username from many
addresses, progressive cool-off, and the address axes sees (keyward/login_limits.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client as BrowserClient
from django.urls import reverse
from django.utils import timezone

from keyward.login_limits import cool_off
from tests.conftest import PASSWORD

LOGIN_URL = reverse("login")
OVERVIEW_URL = reverse("dashboard:overview")


def browser_from(address: str, **headers) -> BrowserClient:
    return BrowserClient(REMOTE_ADDR=address, **headers)


def log_in(browser: BrowserClient, username: str, password: str):
    return browser.post(LOGIN_URL, {"username": username, "password": password})


def spray(address: str, usernames: list[str], per_username: int) -> list[int]:
    browser = browser_from(address)
    return [
        log_in(browser, username, f"guess-{n}").status_code
        for n in range(per_username)
        for username in usernames
    ]


def article(response) -> str:
    html = response.content.decode()
    return html[html.index("<article") : html.index("</article>")]


def assert_locked(response) -> None:
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert int(response["Retry-After"]) > 0


class TestSprayingFromOneAddress:
    USERNAMES = ["vera-viewer"] + [f"user{n}" for n in range(24)]

    def test_it_locks_the_address_across_usernames(self, viewer):
        # 100 wrong passwords over 25 usernames, four each: below the pair limit every time.
        statuses = spray("203.0.113.7", self.USERNAMES, per_username=4)
        assert statuses[:19] == [200] * 19
        assert statuses[19:] == [429] * 81
        assert_locked(log_in(browser_from("203.0.113.7"), "vera-viewer", PASSWORD))

    def test_it_leaves_other_addresses_alone(self, viewer):
        spray("203.0.113.7", self.USERNAMES, per_username=4)
        assert log_in(browser_from("198.51.100.1"), "vera-viewer", PASSWORD).status_code == 302

    def test_it_does_not_lock_a_user_out_of_an_address_they_signed_in_from(self, viewer):
        # A shared office address: the sprayer is locked, its known user is not.
        own = browser_from("203.0.113.7")
        assert log_in(own, "vera-viewer", PASSWORD).status_code == 302
        own.post(reverse("logout"))
        spray("203.0.113.7", [f"user{n}" for n in range(25)], per_username=4)
        assert_locked(log_in(browser_from("203.0.113.7"), "user1", "guess"))
        assert log_in(browser_from("203.0.113.7"), "vera-viewer", PASSWORD).status_code == 302

    def test_a_success_does_not_clear_the_address_count(self, viewer, operator):
        # The attacker's own account: its login clears its own pair, not the spraying count.
        spray("203.0.113.7", [f"user{n}" for n in range(19)], per_username=1)
        assert log_in(browser_from("203.0.113.7"), "otto-operator", PASSWORD).status_code == 302
        assert_locked(log_in(browser_from("203.0.113.7"), "user1", "guess"))


class TestGuessingOneUsernameFromManyAddresses:
    ADDRESSES = [f"192.0.2.{n}" for n in range(1, 13)]

    def guess(self, username: str, per_address: int = 4) -> list[int]:
        return [
            log_in(browser_from(address), username, f"guess-{n}").status_code
            for address in self.ADDRESSES
            for n in range(per_address)
        ]

    def test_it_locks_the_username_across_addresses(self, admin_user):
        # 48 guesses at one user from 12 addresses, four each: below the pair limit each.
        statuses = self.guess("ada-admin")
        assert statuses[:9] == [200] * 9
        assert statuses[9:] == [429] * 39
        assert_locked(log_in(browser_from("192.0.2.200"), "ada-admin", PASSWORD))

    def test_the_admin_still_signs_in_from_a_known_address(self, admin_user):
        home = browser_from("198.51.100.20")
        assert log_in(home, "ada-admin", PASSWORD).status_code == 302
        home.post(reverse("logout"))
        self.guess("ada-admin")
        assert log_in(browser_from("198.51.100.20"), "ada-admin", PASSWORD).status_code == 302

    def test_the_lock_says_the_same_for_a_username_that_does_not_exist(self, admin_user):
        self.guess("ada-admin")
        self.guess("nobody-here")
        real = log_in(browser_from("192.0.2.200"), "ada-admin", "x")
        unknown = log_in(browser_from("192.0.2.200"), "nobody-here", "x")
        assert real.status_code == unknown.status_code == 429
        assert article(real) == article(unknown)

    def test_it_counts_the_address_behind_a_trusted_proxy(self, admin_user, settings):
        settings.KEYWARD_TRUSTED_PROXIES = ["10.9.9.9"]
        for address in self.ADDRESSES[:3]:
            proxied = browser_from("10.9.9.9", HTTP_X_FORWARDED_FOR=f"{address}, 10.9.9.9")
            for n in range(4):
                log_in(proxied, "ada-admin", f"guess-{n}")
        seen = set(AccessAttempt.objects.values_list("ip_address", flat=True))
        assert seen == set(self.ADDRESSES[:3])
        assert_locked(log_in(browser_from("10.9.9.9"), "ada-admin", PASSWORD))

    def test_an_admin_lifts_the_lock_from_the_command_line(self, admin_user):
        self.guess("ada-admin")
        call_command("axes_reset_username", "ada-admin")
        assert log_in(browser_from("192.0.2.200"), "ada-admin", PASSWORD).status_code == 302


class TestProgressiveCoolOff:
    def fail(self, browser: BrowserClient, times: int) -> None:
        for _ in range(times):
            log_in(browser, "vera-viewer", "wrong")

    def test_it_locks_for_three_minutes_then_lets_the_right_password_in(self, viewer):
        start = timezone.now()
        browser = browser_from("198.51.100.9")
        with time_machine.travel(start, tick=False) as clock:
            self.fail(browser, 5)
            assert_locked(log_in(browser, "vera-viewer", PASSWORD))
            clock.shift(timedelta(minutes=2, seconds=50))
            assert_locked(log_in(browser, "vera-viewer", PASSWORD))
            clock.shift(timedelta(seconds=11))
            assert log_in(browser, "vera-viewer", PASSWORD).status_code == 302
            assert browser.get(OVERVIEW_URL).status_code == 200

    def test_each_failure_after_a_lock_doubles_it(self, viewer):
        start = timezone.now()
        browser = browser_from("198.51.100.9")
        with time_machine.travel(start, tick=False) as clock:
            self.fail(browser, 5)  # locked 3 minutes
            clock.shift(timedelta(minutes=3, seconds=1))
            self.fail(browser, 1)  # locked 6 minutes
            locked = log_in(browser, "vera-viewer", PASSWORD)
            assert_locked(locked)
            assert "6 minutes" in locked.content.decode()
            clock.shift(timedelta(minutes=5, seconds=50))
            assert_locked(log_in(browser, "vera-viewer", PASSWORD))
            clock.shift(timedelta(seconds=11))
            assert log_in(browser, "vera-viewer", PASSWORD).status_code == 302

    def test_failures_during_a_lock_do_not_extend_it(self, viewer):
        start = timezone.now()
        browser = browser_from("198.51.100.9")
        with time_machine.travel(start, tick=False) as clock:
            self.fail(browser, 5)
            for _ in range(10):
                clock.shift(timedelta(seconds=15))
                self.fail(browser, 1)
            clock.shift(timedelta(seconds=31))  # 3 minutes after the fifth failure
            assert log_in(browser, "vera-viewer", PASSWORD).status_code == 302

    @pytest.mark.parametrize("failures", [0, 1, 4, 20])
    def test_it_never_locks_longer_than_the_cap(self, failures):
        assert timedelta(minutes=3) <= cool_off(failures) <= timedelta(minutes=30)
