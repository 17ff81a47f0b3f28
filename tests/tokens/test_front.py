"""The token front (tokens/front.py): the three token routes answered ahead of Django's
handler, with Django's security middleware and the protocol's errors kept."""

from __future__ import annotations

import pytest
from django.core.signals import request_started

from .conftest import FORM, INTROSPECT_URL, REVOKE_URL, TOKEN_URL, basic

GRANT = "grant_type=client_credentials"


@pytest.fixture
def handler_runs():
    """Paths of the requests that went through Django's request handler."""
    seen = []

    def receiver(sender, environ, **kwargs):
        seen.append(environ["PATH_INFO"])

    request_started.connect(receiver)
    yield seen
    request_started.disconnect(receiver)


@pytest.mark.django_db
class TestTheFront:
    def test_token_requests_skip_djangos_handler_and_the_console_does_not(
        self, http, registered, handler_runs
    ):
        client, secret = registered
        auth = basic(client.client_id, secret)
        for url in (TOKEN_URL, INTROSPECT_URL, REVOKE_URL):
            http.post(url, "token=x", content_type=FORM, HTTP_AUTHORIZATION=auth)
        http.get("/.well-known/jwks.json")
        http.get("/login/")
        assert handler_runs == ["/.well-known/jwks.json", "/login/"]

    def test_it_keeps_djangos_security_headers(self, http, registered):
        client, secret = registered
        answer = http.post(
            TOKEN_URL, GRANT, content_type=FORM, HTTP_AUTHORIZATION=basic(client.client_id, secret)
        )
        assert answer.status_code == 200
        assert answer["X-Content-Type-Options"] == "nosniff"
        assert answer["Referrer-Policy"] == "same-origin"
        assert answer["Content-Length"] == str(len(answer.content))

    def test_it_redirects_plain_http_when_https_is_required(self, http, settings, registered):
        settings.SECURE_SSL_REDIRECT = True
        client, secret = registered
        answer = http.post(
            TOKEN_URL, GRANT, content_type=FORM, HTTP_AUTHORIZATION=basic(client.client_id, secret)
        )
        assert answer.status_code == 301
        assert answer["Location"] == "https://testserver" + TOKEN_URL

    def test_a_refused_host_is_a_protocol_error(self, http):
        answer = http.post(TOKEN_URL, GRANT, content_type=FORM, HTTP_HOST="evil.example")
        assert answer.status_code == 400
        assert answer.json()["error"] == "invalid_request"
