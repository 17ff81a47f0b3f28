from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.urls import reverse

from audit.models import AdminAction
from audit.services import Actor
from dashboard import services
from tests.conftest import PASSWORD, logged_in

LIST_URL = reverse("dashboard:users")
CREATE_URL = reverse("dashboard:user_create")
NEW_PASSWORD = "plum-orbit-ladder-47"


def role_url(user: User) -> str:
    return reverse("dashboard:user_set_role", args=[user.username])


def active_url(user: User) -> str:
    return reverse("dashboard:user_set_active", args=[user.username])


def role_names(user: User) -> list[str]:
    return list(user.groups.values_list("name", flat=True))


def user_actions(action: str) -> list[AdminAction]:
    return list(AdminAction.objects.filter(action=action, target_type="user"))


class TestUserList:
    def test_it_lists_users_with_role_last_login_and_state(self, admin_client, viewer, operator):
        response = admin_client.get(LIST_URL)
        assert response.status_code == 200
        roles = {user.username: user.role_label for user in response.context["users"]}
        assert roles == {"ada-admin": "admin", "otto-operator": "operator", "vera-viewer": "viewer"}
        html = response.content.decode()
        assert "never" in html and "badge-active" in html

    def test_it_is_for_admins_only(self, operator_client):
        assert operator_client.get(LIST_URL).status_code == 403


class TestUserCreate:
    def form(self, **overrides) -> dict:
        data = {
            "username": "nina",
            "email": "nina@example.com",
            "role": "operator",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        }
        return data | overrides

    def test_it_creates_a_user_with_exactly_one_role(self, admin_client):
        response = admin_client.post(CREATE_URL, self.form(), follow=True)
        assert response.redirect_chain == [(LIST_URL, 302)]
        user = User.objects.get(username="nina")
        assert role_names(user) == ["operator"]
        assert user.check_password(NEW_PASSWORD) and user.is_active
        assert NEW_PASSWORD not in response.content.decode()

    def test_it_creates_a_user_with_the_longest_username_allowed(self, admin_client):
        # The audit row names the user in target_id, which once held fewer characters.
        username = "u" * 150
        response = admin_client.post(CREATE_URL, self.form(username=username))
        assert response.status_code == 302
        assert User.objects.filter(username=username).exists()
        assert AdminAction.objects.filter(target_id=username).exists()

    def test_it_records_the_audit_row_without_the_password(self, admin_client, admin_user):
        admin_client.post(CREATE_URL, self.form())
        [row] = user_actions("user.create")
        assert row.actor == admin_user and row.target_id == "nina"
        assert row.after == {
            "username": "nina",
            "email": "nina@example.com",
            "role": "operator",
            "active": True,
            "must_change_password": False,
        }
        assert NEW_PASSWORD not in json.dumps([row.before, row.after])

    def test_it_generates_a_password_shown_once(self, admin_client):
        response = admin_client.post(CREATE_URL, self.form(password1="", password2=""), follow=True)
        assert response.redirect_chain == [(reverse("dashboard:user_password", args=["nina"]), 302)]
        password = response.context["password"]
        assert len(password) >= 20 and password in response.content.decode()
        assert User.objects.get(username="nina").check_password(password)
        assert password not in json.dumps(user_actions("user.create")[0].after)
        assert password not in admin_client.get(LIST_URL).content.decode()
        assert "no-store" in response["Cache-Control"]
        again = admin_client.get(reverse("dashboard:user_password", args=["nina"]))
        assert password not in again.content.decode()
        assert "The password was already shown" in again.content.decode()

    def test_it_applies_the_password_validators(self, admin_client):
        response = admin_client.post(CREATE_URL, self.form(password1="123", password2="123"))
        assert response.status_code == 400
        assert "too short" in response.content.decode()
        assert not User.objects.filter(username="nina").exists()
        assert not user_actions("user.create")

    def test_it_refuses_mismatched_passwords(self, admin_client):
        response = admin_client.post(CREATE_URL, self.form(password2=NEW_PASSWORD + "x"))
        assert response.status_code == 400
        assert not User.objects.filter(username="nina").exists()

    def test_it_refuses_a_taken_username(self, admin_client, viewer):
        response = admin_client.post(CREATE_URL, self.form(username="VERA-viewer"))
        assert response.status_code == 400
        assert "already exists" in response.content.decode()

    def test_it_refuses_get(self, admin_client):
        assert admin_client.get(CREATE_URL).status_code == 405

    def test_it_refuses_operators(self, operator_client):
        assert operator_client.post(CREATE_URL, self.form()).status_code == 403
        assert not User.objects.filter(username="nina").exists()


class TestUserSetRole:
    def test_it_replaces_the_role(self, admin_client, viewer):
        response = admin_client.post(role_url(viewer), {"role": "operator"})
        assert response.status_code == 302
        assert role_names(viewer) == ["operator"]

    def test_it_records_before_and_after(self, admin_client, viewer):
        admin_client.post(role_url(viewer), {"role": "admin"})
        [row] = user_actions("user.set_role")
        assert (row.target_id, row.before, row.after) == (
            "vera-viewer",
            {"role": "viewer"},
            {"role": "admin"},
        )

    def test_it_answers_htmx_with_the_row(self, admin_client, viewer):
        response = admin_client.post(
            role_url(viewer), {"role": "operator"}, headers={"HX-Request": "true"}
        )
        html = response.content.decode()
        assert html.lstrip().startswith(f'<tr id="user-{viewer.pk}"')
        assert '<option value="operator" selected>' in html

    def test_it_does_not_let_an_admin_demote_themselves(self, admin_client, admin_user):
        response = admin_client.post(
            role_url(admin_user), {"role": "viewer"}, headers={"HX-Request": "true"}
        )
        assert "cannot change the role of your own account" in response.content.decode()
        assert role_names(admin_user) == ["admin"]
        assert not user_actions("user.set_role")

    def test_it_refuses_an_unknown_role(self, admin_client, viewer):
        admin_client.post(role_url(viewer), {"role": "root"})
        assert role_names(viewer) == ["viewer"]

    def test_it_answers_404_for_an_unknown_user(self, admin_client):
        url = reverse("dashboard:user_set_role", args=["nobody"])
        assert admin_client.post(url, {"role": "viewer"}).status_code == 404

    def test_it_refuses_get(self, admin_client, viewer):
        assert admin_client.get(role_url(viewer)).status_code == 405

    def test_it_refuses_operators(self, operator_client, viewer):
        assert operator_client.post(role_url(viewer), {"role": "admin"}).status_code == 403
        assert role_names(viewer) == ["viewer"]


class TestUserSetActive:
    def test_it_deactivates_and_ends_their_access(self, admin_client, viewer):
        viewer_browser = logged_in(viewer)
        assert admin_client.post(active_url(viewer), {"active": "0"}).status_code == 302
        viewer.refresh_from_db()
        assert not viewer.is_active
        assert viewer_browser.get(reverse("dashboard:overview")).status_code == 302
        response = viewer_browser.post(
            reverse("login"), {"username": "vera-viewer", "password": PASSWORD}
        )
        assert response.status_code == 200 and response.context["form"].errors

    def test_it_reactivates(self, admin_client, viewer):
        admin_client.post(active_url(viewer), {"active": "0"})
        admin_client.post(active_url(viewer), {"active": "1"})
        viewer.refresh_from_db()
        assert viewer.is_active
        actions = [row.action for row in AdminAction.objects.filter(target_type="user")]
        assert actions == ["user.reactivate", "user.deactivate"]

    def test_it_records_the_audit_row(self, admin_client, admin_user, viewer):
        admin_client.post(active_url(viewer), {"active": "0"})
        [row] = user_actions("user.deactivate")
        assert (row.actor, row.target_id, row.before, row.after) == (
            admin_user,
            "vera-viewer",
            {"active": True},
            {"active": False},
        )

    def test_it_does_not_let_an_admin_deactivate_themselves(self, admin_client, admin_user):
        admin_client.post(active_url(admin_user), {"active": "0"})
        admin_user.refresh_from_db()
        assert admin_user.is_active and not user_actions("user.deactivate")

    def test_it_refuses_get(self, admin_client, viewer):
        assert admin_client.get(active_url(viewer)).status_code == 405

    def test_it_refuses_operators(self, operator_client, viewer):
        assert operator_client.post(active_url(viewer), {"active": "0"}).status_code == 403
        viewer.refresh_from_db()
        assert viewer.is_active


class TestUserServices:
    def test_it_refuses_an_unknown_role_and_writes_nothing(self, db):
        with pytest.raises(ValidationError):
            services.user_create(
                actor=Actor.cli(), username="x", email="", role="root", password=NEW_PASSWORD
            )
        assert not User.objects.filter(username="x").exists()
        assert not AdminAction.objects.exists()

    def test_it_refuses_a_weak_password(self, db):
        with pytest.raises(ValidationError):
            services.user_create(
                actor=Actor.cli(), username="x", email="", role="viewer", password="password"
            )
        assert not User.objects.exists()

    def test_it_is_a_no_op_when_the_role_is_unchanged(self, viewer):
        services.user_set_role(actor=Actor.cli(), user=viewer, role="viewer")
        assert not AdminAction.objects.exists()
