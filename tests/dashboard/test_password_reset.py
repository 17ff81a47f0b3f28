"""Admins reset another user's password from the Users page: a generated password shown
once, a change forced at the next login, an audit row without the password."""

from __future__ import annotations

import json

from django.test import Client as BrowserClient
from django.urls import reverse

from audit.models import AdminAction
from dashboard.models import PasswordChangeRequired
from tests.conftest import PASSWORD

NEW_PASSWORD = "my-own-long-passphrase-77"


def reset_url(username: str) -> str:
    return reverse("dashboard:user_password_reset", args=[username])


def reset(admin_client, username: str) -> str:
    response = admin_client.post(reset_url(username), follow=True)
    assert response.redirect_chain == [(reverse("dashboard:user_password", args=[username]), 302)]
    return response.context["password"]


class TestReset:
    def test_the_users_page_offers_it_with_a_confirmation(self, admin_client, viewer):
        text = admin_client.get(reverse("dashboard:users")).text
        assert f'action="{reset_url(viewer.username)}"' in text
        assert 'data-confirm="Reset the password of vera-viewer?' in text

    def test_it_shows_a_generated_password_once(self, admin_client, viewer):
        password = reset(admin_client, viewer.username)
        viewer.refresh_from_db()
        assert len(password) >= 20 and viewer.check_password(password)
        assert not viewer.check_password(PASSWORD)
        again = admin_client.get(reverse("dashboard:user_password", args=[viewer.username]))
        assert password not in again.text and "already shown" in again.text

    def test_it_is_audited_without_the_password(self, admin_client, admin_user, viewer):
        password = reset(admin_client, viewer.username)
        row = AdminAction.objects.get(action="user.password_reset")
        assert row.actor == admin_user and row.target_id == viewer.username
        assert password not in json.dumps([row.before, row.after])

    def test_an_admin_cannot_reset_their_own(self, admin_client, admin_user):
        response = admin_client.post(reset_url(admin_user.username), follow=True)
        assert "You cannot reset the password of your own account" in response.text
        assert not AdminAction.objects.filter(action="user.password_reset")

    def test_operators_cannot(self, operator_client, viewer):
        assert operator_client.post(reset_url(viewer.username)).status_code == 403

    def test_it_ends_the_users_signed_in_sessions(self, admin_client, viewer, viewer_client):
        assert viewer_client.get(reverse("dashboard:overview")).status_code == 200
        reset(admin_client, viewer.username)
        response = viewer_client.get(reverse("dashboard:overview"))
        assert response.status_code == 302 and response["Location"].startswith("/login/")


class TestChangeAtNextLogin:
    def login(self, username: str, password: str) -> BrowserClient:
        browser = BrowserClient()
        response = browser.post(reverse("login"), {"username": username, "password": password})
        assert response.status_code == 302
        return browser

    def test_every_page_sends_the_user_to_change_it(self, admin_client, viewer):
        browser = self.login(viewer.username, reset(admin_client, viewer.username))
        for url in (reverse("dashboard:overview"), reverse("clients:list")):
            response = browser.get(url)
            assert response.status_code == 302
            assert response["Location"] == reverse("dashboard:password_change")
        page = browser.get(reverse("dashboard:password_change"))
        assert page.status_code == 200 and "Your password was set by an admin" in page.text

    def test_htmx_requests_get_a_client_redirect(self, admin_client, viewer):
        browser = self.login(viewer.username, reset(admin_client, viewer.username))
        response = browser.get(reverse("clients:list"), headers={"HX-Request": "true"})
        assert response["HX-Redirect"] == reverse("dashboard:password_change")

    def test_changing_it_lifts_the_requirement_and_is_audited(self, admin_client, viewer):
        temporary = reset(admin_client, viewer.username)
        browser = self.login(viewer.username, temporary)
        data = {
            "old_password": temporary,
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        }
        response = browser.post(reverse("dashboard:password_change"), data)
        assert response.status_code == 302
        assert browser.get(reverse("clients:list")).status_code == 200  # still signed in
        viewer.refresh_from_db()
        assert viewer.check_password(NEW_PASSWORD)
        assert not PasswordChangeRequired.objects.filter(user=viewer).exists()
        row = AdminAction.objects.get(action="user.password_change")
        assert row.actor == viewer and NEW_PASSWORD not in json.dumps(row.after)

    def test_a_generated_first_password_must_be_changed_too(self, admin_client):
        data = {"username": "nina", "role": "viewer"}
        password = admin_client.post(reverse("dashboard:user_create"), data, follow=True).context[
            "password"
        ]
        browser = self.login("nina", password)
        response = browser.get(reverse("dashboard:overview"))
        assert response["Location"] == reverse("dashboard:password_change")

    def test_a_chosen_first_password_need_not_be_changed(self, admin_client):
        data = {
            "username": "nina",
            "role": "viewer",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        }
        admin_client.post(reverse("dashboard:user_create"), data)
        browser = self.login("nina", NEW_PASSWORD)
        assert browser.get(reverse("dashboard:overview")).status_code == 200
