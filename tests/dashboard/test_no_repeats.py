"""No console action repeats on reload, back or double submit (base/once.py).

Reloading the page after a POST, resubmitting the same form, or sending it twice at once
must create one thing; a secret or password is shown once, and a second visit says so.
"""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client as BrowserClient
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from base.models import FormTokenUse, ShownOnce
from base.once import REPEAT_NOTICE, SHOWN_ONCE_SECONDS
from clients.models import Client, ClientSecret, Scope
from tests.conftest import logged_in, make_user

TOKEN_RE = re.compile(r'name="form_token" value="([^"]+)"')
SECRET_RE = re.compile(r'<code id="client-secret">([^<]+)</code>')
REGISTER = {"name": "Billing", "environment": "staging", "access_token_lifetime": "3600"}


def form_token(browser: BrowserClient, page: str) -> str:
    """The one-time token the form on `page` carries, as a browser would send it."""
    match = TOKEN_RE.search(browser.get(page).content.decode())
    assert match, f"no form token on {page}"
    return match.group(1)


def secret_page(client: Client) -> str:
    return reverse("clients:secret", args=[client.client_id])


class TestRegisterIsNotRepeated:
    def test_reloading_the_secret_page_shows_the_secret_once(self, operator_client):
        data = REGISTER | {"form_token": form_token(operator_client, reverse("clients:register"))}
        first = operator_client.post(reverse("clients:register"), data, follow=True)
        secret = SECRET_RE.search(first.text).group(1)
        client = Client.objects.get()
        reloaded = operator_client.get(secret_page(client))
        assert secret not in reloaded.text
        assert "The secret was already shown" in reloaded.text
        assert reverse("security:rotate", args=[client.client_id]) in reloaded.text
        assert Client.objects.count() == 1 and ClientSecret.objects.count() == 1

    def test_resending_the_post_creates_nothing_and_shows_the_first_result(self, operator_client):
        data = REGISTER | {"form_token": form_token(operator_client, reverse("clients:register"))}
        operator_client.post(reverse("clients:register"), data, follow=True)
        again = operator_client.post(reverse("clients:register"), data, follow=True)
        client = Client.objects.get()
        assert again.redirect_chain == [(secret_page(client), 302)]
        assert REPEAT_NOTICE in again.text and "The secret was already shown" in again.text
        assert ClientSecret.objects.count() == 1

    def test_a_double_click_still_shows_the_secret_after_the_second(self, operator_client):
        """The browser drops the first response; the second click's page shows the secret."""
        data = REGISTER | {"form_token": form_token(operator_client, reverse("clients:register"))}
        operator_client.post(reverse("clients:register"), data)  # its answer is never read
        second = operator_client.post(reverse("clients:register"), data, follow=True)
        assert Client.objects.count() == 1
        secret = SECRET_RE.search(second.text).group(1)
        assert ClientSecret.objects.get().hint.endswith(secret[-4:])

    def test_a_form_sent_back_with_errors_keeps_its_token_usable(self, operator_client):
        token = form_token(operator_client, reverse("clients:register"))
        bad = operator_client.post(reverse("clients:register"), {"form_token": token})
        assert bad.status_code == 200 and not Client.objects.exists()
        good = operator_client.post(reverse("clients:register"), REGISTER | {"form_token": token})
        assert good.status_code == 302 and Client.objects.count() == 1

    def test_a_forged_token_does_nothing(self, operator_client):
        data = REGISTER | {"form_token": "made-up:token:abc"}
        response = operator_client.post(reverse("clients:register"), data)
        assert response.status_code == 400 and "out of date" in response.text
        assert not Client.objects.exists()

    def test_another_users_token_does_nothing(self, operator_client, admin_client):
        token = form_token(admin_client, reverse("clients:register"))
        response = operator_client.post(
            reverse("clients:register"), REGISTER | {"form_token": token}
        )
        assert response.status_code == 400 and not Client.objects.exists()


@pytest.mark.django_db(transaction=True)
class TestSimultaneousSubmissions:
    @pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
    def test_two_requests_at_once_register_one_client(self):
        operator = make_user("otto-operator", "operator")
        browsers = [logged_in(operator), logged_in(operator)]
        data = REGISTER | {"form_token": form_token(browsers[0], reverse("clients:register"))}
        start = threading.Barrier(2)
        answers = []

        def submit(browser):
            start.wait()
            answers.append(browser.post(reverse("clients:register"), data).status_code)
            connection.close()

        threads = [threading.Thread(target=submit, args=(browser,)) for browser in browsers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert answers == [302, 302]
        assert Client.objects.count() == 1 and ClientSecret.objects.count() == 1
        assert FormTokenUse.objects.count() == 1


class TestRotateIsNotRepeated:
    def test_reload_and_resubmit_rotate_once(self, operator_client, make_client):
        client, _ = make_client("Billing")
        url = reverse("security:rotate", args=[client.client_id])
        data = {"grace_choice": "24h", "form_token": form_token(operator_client, url)}
        first = operator_client.post(url, data, follow=True)
        assert first.redirect_chain == [(secret_page(client), 302)]
        plain = first.context["plain"]
        assert plain in first.text
        assert plain not in operator_client.get(secret_page(client)).text
        again = operator_client.post(url, data, follow=True)
        assert REPEAT_NOTICE in again.text and plain not in again.text
        assert client.secrets.count() == 2  # the first secret and one rotation, not two

    def test_the_one_click_rotate_on_the_health_page_carries_a_token(self, operator_client):
        # The health page lists findings with a "Rotate (24 h)" form per row; the same
        # template tag gives each its own token (checked on a page that has findings in
        # tests/security; here, that the tag is in the template).
        from pathlib import Path

        template = Path("templates/security/health.html").read_text()
        rotate_form = template[template.index("security:rotate") :][:200]
        assert "{% form_token %}" in rotate_form


class TestUserCreateIsNotRepeated:
    def test_reload_and_resubmit_create_one_user_and_show_the_password_once(self, admin_client):
        data = {
            "username": "nina",
            "role": "viewer",
            "form_token": form_token(admin_client, reverse("dashboard:users")),
        }
        first = admin_client.post(reverse("dashboard:user_create"), data, follow=True)
        password = first.context["password"]
        assert password and password in first.text
        page = reverse("dashboard:user_password", args=["nina"])
        assert password not in admin_client.get(page).text
        again = admin_client.post(reverse("dashboard:user_create"), data, follow=True)
        assert again.redirect_chain == [(page, 302)] and REPEAT_NOTICE in again.text
        assert User.objects.filter(username="nina").count() == 1


class TestScopeCreateIsNotRepeated:
    def test_reload_and_resubmit_create_one_scope(self, admin_client):
        url = reverse("clients:scope_create")
        data = {"name": "orders:read", "form_token": form_token(admin_client, url)}
        first = admin_client.post(url, data)
        again = admin_client.post(url, data, follow=True)
        assert again.redirect_chain == [(first["Location"], 302)]
        assert REPEAT_NOTICE in again.text and "already exists" not in again.text
        assert Scope.objects.count() == 1


class TestGrantIsNotRepeated:
    def test_a_resent_htmx_grant_redirects_to_the_client_page(self, operator_client, make_client):
        client, _ = make_client("Billing")
        Scope.objects.create(name="orders:read")
        detail = reverse("clients:detail", args=[client.client_id])
        url = reverse("clients:scope_add", args=[client.client_id])
        data = {"scope": "orders:read", "form_token": form_token(operator_client, detail)}
        htmx = {"HX-Request": "true"}
        assert operator_client.post(url, data, headers=htmx).status_code == 200
        again = operator_client.post(url, data, headers=htmx)
        assert again.status_code == 204 and again["HX-Redirect"] == detail
        assert client.grants.count() == 1


class TestShownOnceStorage:
    def test_the_value_waits_encrypted_and_is_gone_once_read(self, operator_client):
        data = REGISTER | {"form_token": form_token(operator_client, reverse("clients:register"))}
        operator_client.post(reverse("clients:register"), data)
        row = ShownOnce.objects.get()
        client = Client.objects.get()
        response = operator_client.get(secret_page(client))
        secret = SECRET_RE.search(response.text).group(1)
        assert (
            secret not in row.ciphertext
            and secret.removeprefix("kwsec_")[:12] not in row.ciphertext
        )
        assert not ShownOnce.objects.exists()

    def test_no_sql_statement_carries_it_so_query_logging_cannot_leak_it(self, operator_client):
        # With DEBUG and LOG_LEVEL=DEBUG, django.db.backends logs every statement with its
        # parameters: the value crosses the database only encrypted.
        with CaptureQueriesContext(connection) as queries:
            response = operator_client.post(reverse("clients:register"), REGISTER, follow=True)
        secret = SECRET_RE.search(response.text).group(1)
        body = secret.removeprefix("kwsec_")
        assert not [q["sql"] for q in queries.captured_queries if body[:12] in q["sql"]]

    def test_another_session_of_the_same_user_cannot_read_it(self, operator, operator_client):
        operator_client.post(reverse("clients:register"), REGISTER)
        other_session = logged_in(operator)
        client = Client.objects.get()
        assert "already shown" in other_session.get(secret_page(client)).text
        assert SECRET_RE.search(operator_client.get(secret_page(client)).text)

    def test_an_unread_value_expires(self, operator_client, time_machine):
        operator_client.post(reverse("clients:register"), REGISTER)
        time_machine.move_to(timezone.now() + timedelta(seconds=SHOWN_ONCE_SECONDS + 1))
        text = operator_client.get(secret_page(Client.objects.get())).text
        assert "already shown" in text and not SECRET_RE.search(text)

    def test_the_session_backend_keeps_sessions_on_the_server(self, settings):
        # A cookie-based session would carry whatever the console stores in it to the browser.
        assert settings.SESSION_ENGINE == "django.contrib.sessions.backends.db"
