"""The JWKS and the health check stay fast while console users log in: each login hashes a
password for hundreds of milliseconds on a web thread, and the web process (bin/serve)
caps how many do so at once, keeping threads free for everything else."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.urls import reverse

from bench.busy_console import busy_sample, p
from keyward import views
from tests.conftest import PASSWORD, make_user

from .conftest import serving


@pytest.fixture
def console_user(transactional_db):
    user = make_user("ada-admin", "admin")
    # The server hashes as deployed (PBKDF2), not with the tests' fast hasher.
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt())
    user.save()
    return user


class TestBusyConsole:
    def test_it_answers_jwks_and_healthz_quickly_while_four_log_in(self, console_user):
        with serving() as url:
            times, answers = busy_sample(url, console_user.username, PASSWORD, seconds=10)
        assert answers.count(302) >= 4, answers  # the console really was busy logging in
        jwks, healthz = times["/.well-known/jwks.json"], times["/healthz/web"]
        assert len(jwks) >= 10
        # Before the cap, four logins took every thread: JWKS p50 ~300-900 ms on 2 cores.
        assert p(jwks, 50) < 200, sorted(jwks)
        assert p(healthz, 50) < 200, sorted(healthz)


class TestLoginCap:
    def test_it_asks_to_retry_when_the_process_is_at_its_cap(self, client, viewer, settings):
        held = 0
        while views._logins_hashing.acquire(blocking=False):
            held += 1
        try:
            assert held == settings.KEYWARD_LOGINS_PER_PROCESS
            data = {"username": viewer.username, "password": PASSWORD}
            response = client.post(reverse("login"), data)
            assert response.status_code == 503
            assert response["Retry-After"] == "1"
            assert "busy logging others in" in response.text
            assert client.get(reverse("login")).status_code == 200
        finally:
            for _ in range(held):
                views._logins_hashing.release()
        response = client.post(reverse("login"), data)
        assert response.status_code == 302

    def test_it_releases_its_slot_after_a_failed_login(self, client, viewer, settings):
        for _ in range(settings.KEYWARD_LOGINS_PER_PROCESS + 1):
            data = {"username": viewer.username, "password": "wrong"}
            assert client.post(reverse("login"), data).status_code == 200
        data = {"username": viewer.username, "password": PASSWORD}
        assert client.post(reverse("login"), data).status_code == 302
