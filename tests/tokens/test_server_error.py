"""A backing-service failure gets RFC-style JSON and an event, not Django's HTML 500."""

from __future__ import annotations

import pytest
from django.db import connection

from tokens.client_cache import client_cache_clear

from .conftest import TOKEN_URL, basic


@pytest.fixture
def database_down():
    """Point the connection at a closed port: a real connection failure, then restore."""
    original = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"
    yield
    connection.settings_dict["PORT"] = original
    connection.close()


@pytest.mark.django_db(transaction=True)
class TestTokenServiceFault:
    def test_it_answers_server_error_json_and_records_an_event(
        self, registered, post_form, events, database_down
    ):
        client, plain = registered
        client_cache_clear()  # the lookup must reach the (unreachable) database
        response = post_form(
            TOKEN_URL,
            {"grant_type": "client_credentials"},
            HTTP_AUTHORIZATION=basic(client.client_id, plain),
        )
        assert response.status_code == 500
        assert response["Content-Type"] == "application/json"
        assert response["Cache-Control"] == "no-store"
        assert response.json()["error"] == "server_error"
        recorded = events()
        assert [(e.reason, e.status_code) for e in recorded] == [("server_error", 500)]
