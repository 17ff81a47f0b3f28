"""After registration the plain secret exists only in the one-time response."""

from __future__ import annotations

import re

import pytest
from django.contrib.sessions.models import Session
from django.db import connection, models
from django.urls import reverse

from audit.models import AdminAction
from clients.models import Client, ClientSecret

TEXT_FIELDS = (models.CharField, models.TextField, models.JSONField, models.GenericIPAddressField)


@pytest.fixture
def registered(operator_client, make_scope):
    """Registers a client through the page; returns (client, plain secret, response)."""
    make_scope("orders:read")
    data = {
        "name": "Billing",
        "environment": "production",
        "access_token_lifetime": "3600",
        "scopes": ["orders:read"],
    }
    response = operator_client.post(reverse("clients:register"), data, follow=True)
    secret = re.search(r'<code id="client-secret">([^<]+)</code>', response.text).group(1)
    return Client.objects.get(name="Billing"), secret, response


def fragments(secret: str) -> list[str]:
    """The whole secret and pieces of its random part: none may show up anywhere.
    (The hint legitimately holds the prefix and the last 4 characters.)"""
    body = secret.removeprefix("kwsec_")
    return [secret, body, body[:12], body[12:24], body[-16:-4]]


def assert_absent(secret: str, text: str, where: str) -> None:
    for fragment in fragments(secret):
        assert fragment not in text, f"secret fragment {fragment!r} found in {where}"


class TestSecretInDatabase:
    def test_it_is_in_no_text_column_of_clients_secrets_or_audit(self, registered):
        _client, secret, _response = registered
        for model in (Client, ClientSecret, AdminAction):
            fields = [f.name for f in model._meta.fields if isinstance(f, TEXT_FIELDS)]
            for row in model.objects.values(*fields):
                assert_absent(secret, repr(row), model.__name__)

    def test_it_is_in_no_session(self, registered, operator_client):
        _client, secret, _response = registered
        operator_client.get(reverse("clients:list"))  # any later request that saves the session
        sessions = list(Session.objects.all())
        assert sessions
        for session in sessions:
            assert_absent(secret, session.session_data, "django_session (raw)")
            assert_absent(secret, repr(session.get_decoded()), "django_session (decoded)")

    def test_it_is_in_no_row_of_any_table(self, registered):
        _client, secret, _response = registered
        with connection.cursor() as cursor:
            for table in connection.introspection.table_names(cursor):
                cursor.execute(f'SELECT t::text FROM "{table}" AS t')  # noqa: S608 - table names from introspection
                for (row,) in cursor.fetchall():
                    assert_absent(secret, row, table)

    def test_the_hash_and_hint_are_stored_instead(self, registered):
        client, secret, _response = registered
        stored = client.secrets.get()
        assert stored.hint == f"kwsec_…{secret[-4:]}" and len(stored.secret_hash) == 64


class TestSecretInPages:
    def test_it_is_only_on_the_one_time_response(self, registered, operator_client):
        client, secret, response = registered
        assert secret in response.text
        assert response["Cache-Control"] == "no-store"
        for cookie in operator_client.cookies.values():
            assert_absent(secret, cookie.value, f"cookie {cookie.key}")
        again = operator_client.get(reverse("clients:secret", args=[client.client_id]))
        assert_absent(secret, again.text, "the secret page, reloaded")
        assert "The secret was already shown" in again.text

    def test_it_is_on_no_later_page(self, registered, operator_client, admin_client):
        client, secret, _response = registered
        pages = [
            reverse("clients:list"),
            reverse("clients:list") + "?q=Billing",
            reverse("clients:detail", args=[client.client_id]),
            reverse("clients:edit", args=[client.client_id]),
            reverse("clients:register"),
            reverse("clients:scope_list"),
            reverse("clients:scope_detail", args=["orders:read"]),
            reverse("dashboard:overview"),
        ]
        for url in pages:
            response = operator_client.get(url)
            assert response.status_code == 200, url
            assert_absent(secret, response.content.decode(), url)
        delete_page = admin_client.get(reverse("clients:delete", args=[client.client_id]))
        assert_absent(secret, delete_page.content.decode(), "delete page")

    def test_it_is_not_on_the_audit_page_or_its_csv(self, registered, admin_client):
        client, secret, _response = registered
        for url in (reverse("audit:list"), reverse("audit:export")):
            response = admin_client.get(url)
            assert response.status_code == 200, url
            body = b"".join(response) if response.streaming else response.content
            assert client.client_id in body.decode(), f"{url} does not list the client at all"
            assert_absent(secret, body.decode(), url)

    def test_it_is_not_repeated_after_scope_changes(self, registered, operator_client, make_scope):
        client, secret, _response = registered
        make_scope("orders:write")
        response = operator_client.post(
            reverse("clients:scope_add", args=[client.client_id]),
            {"scope": "orders:write"},
            headers={"HX-Request": "true"},
        )
        assert_absent(secret, response.content.decode(), "scope add fragment")
