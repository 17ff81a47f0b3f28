"""Console sessions end after 30 idle minutes, and 12 hours after login however active;
pages a logged-in user sees are never stored by a browser or proxy cache."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from tests.conftest import PASSWORD

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def logged_in_at_start(client, viewer):
    """A viewer who logged in through the login form at START (time travels from there)."""
    with time_machine.travel(START, tick=False) as traveller:
        response = client.post(
            reverse("login"), {"username": viewer.username, "password": PASSWORD}
        )
        assert response.status_code == 302
        yield client, traveller


def overview(client, **headers):
    return client.get(reverse("dashboard:overview"), **headers)


class TestIdleTimeout:
    def test_it_keeps_a_session_used_within_the_idle_limit(self, logged_in_at_start):
        client, traveller = logged_in_at_start
        traveller.shift(timedelta(minutes=29))
        assert overview(client).status_code == 200

    def test_it_ends_a_session_idle_past_the_limit(self, logged_in_at_start):
        client, traveller = logged_in_at_start
        traveller.shift(timedelta(minutes=31))
        response = overview(client)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))

    def test_it_slides_with_each_request(self, logged_in_at_start):
        client, traveller = logged_in_at_start
        for _step in range(4):
            traveller.shift(timedelta(minutes=20))
            assert overview(client).status_code == 200

    def test_it_reads_the_limit_from_settings(self, logged_in_at_start, settings):
        client, traveller = logged_in_at_start
        assert settings.SESSION_COOKIE_AGE == 30 * 60
        assert settings.SESSION_SAVE_EVERY_REQUEST


class TestAbsoluteLifetime:
    def test_it_ends_an_active_session_twelve_hours_after_login(self, logged_in_at_start):
        client, traveller = logged_in_at_start
        for _step in range(11 * 3):  # a request every 20 minutes for 11 hours
            traveller.shift(timedelta(minutes=20))
            assert overview(client).status_code == 200
        traveller.shift(timedelta(minutes=61))
        response = overview(client)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
        # Logged out for good: the session is gone, not just this one answer.
        assert overview(client).status_code == 302

    def test_it_sends_htmx_requests_to_login_by_client_redirect(self, logged_in_at_start):
        client, traveller = logged_in_at_start
        for _step in range(36):
            traveller.shift(timedelta(minutes=20))
            assert overview(client).status_code == 200
        traveller.shift(timedelta(minutes=20))
        response = overview(client, HTTP_HX_REQUEST="true")
        assert response.status_code == 204
        assert response["HX-Redirect"].startswith(reverse("login"))

    def test_it_starts_again_at_a_new_login(self, logged_in_at_start, viewer):
        client, traveller = logged_in_at_start
        traveller.shift(timedelta(hours=11, minutes=50))
        client.post(reverse("logout"))
        client.post(reverse("login"), {"username": viewer.username, "password": PASSWORD})
        traveller.shift(timedelta(minutes=20))
        assert overview(client).status_code == 200


class TestNoStore:
    def test_it_marks_pages_of_a_logged_in_user_no_store(self, viewer_client):
        for name in ("dashboard:overview", "clients:list", "audit:list", "security:health"):
            response = viewer_client.get(reverse(name))
            assert response.status_code == 200
            assert "no-store" in response["Cache-Control"], name
            assert "private" in response["Cache-Control"], name

    def test_it_marks_a_refusal_no_store_too(self, viewer_client):
        response = viewer_client.get(reverse("dashboard:users"))
        assert response.status_code == 403
        assert "no-store" in response["Cache-Control"]

    def test_it_leaves_public_answers_cacheable(self, anonymous_client, db):
        response = anonymous_client.get(reverse("tokens:jwks"))
        assert response["Cache-Control"].startswith("public")
