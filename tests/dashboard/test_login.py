from __future__ import annotations

from django.test import Client as BrowserClient
from django.urls import reverse

from tests.conftest import PASSWORD, logged_in

LOGIN_URL = reverse("login")
LOGOUT_URL = reverse("logout")


def log_in(browser: BrowserClient, username: str, password: str):
    return browser.post(LOGIN_URL, {"username": username, "password": password})


class TestLogin:
    def test_it_shows_the_form(self, anonymous_client):
        response = anonymous_client.get(LOGIN_URL)
        assert response.status_code == 200 and b'name="password"' in response.content

    def test_it_logs_in_and_lands_on_the_overview(self, anonymous_client, viewer):
        response = log_in(anonymous_client, "vera-viewer", PASSWORD)
        assert response.status_code == 302 and response["Location"] == reverse("dashboard:overview")
        assert anonymous_client.get(reverse("dashboard:overview")).status_code == 200

    def test_it_follows_next(self, anonymous_client, viewer):
        response = anonymous_client.post(
            LOGIN_URL,
            {"username": "vera-viewer", "password": PASSWORD, "next": reverse("audit:list")},
        )
        assert response["Location"] == reverse("audit:list")

    def test_it_sends_anonymous_visitors_to_the_login_page(self, anonymous_client):
        response = anonymous_client.get(reverse("audit:list"))
        assert response.status_code == 302 and response["Location"].startswith(LOGIN_URL)

    def test_it_refuses_a_wrong_password(self, anonymous_client, viewer):
        response = log_in(anonymous_client, "vera-viewer", "wrong")
        assert response.status_code == 200
        assert "Wrong username or password" in response.content.decode()

    def test_it_locks_the_account_after_five_failures(self, anonymous_client, viewer):
        for _ in range(5):
            log_in(anonymous_client, "vera-viewer", "wrong")
        response = log_in(anonymous_client, "vera-viewer", PASSWORD)
        assert response.status_code == 429
        assert "Too many failed logins" in response.content.decode()
        assert anonymous_client.get(reverse("dashboard:overview")).status_code == 302

    def test_it_still_lets_in_after_four_failures(self, anonymous_client, viewer):
        for _ in range(4):
            log_in(anonymous_client, "vera-viewer", "wrong")
        assert log_in(anonymous_client, "vera-viewer", PASSWORD).status_code == 302


class TestLogout:
    def test_it_refuses_get(self, viewer):
        browser = logged_in(viewer)
        assert browser.get(LOGOUT_URL).status_code == 405
        assert browser.get(reverse("dashboard:overview")).status_code == 200

    def test_it_logs_out_on_post(self, viewer):
        browser = logged_in(viewer)
        response = browser.post(LOGOUT_URL)
        assert response.status_code == 302 and response["Location"] == LOGIN_URL
        assert browser.get(reverse("dashboard:overview")).status_code == 302

    def test_it_offers_a_logout_form_with_csrf(self, viewer):
        html = logged_in(viewer).get(reverse("dashboard:overview")).content.decode()
        assert f'<form method="post" action="{LOGOUT_URL}"' in html
        assert "csrfmiddlewaretoken" in html
