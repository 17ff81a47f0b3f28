"""Property tests: no input to the three endpoints produces a server error."""

from __future__ import annotations

import io

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.test import Client as HttpClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import FORM, INTROSPECT_URL, REVOKE_URL, TOKEN_URL, basic

ENDPOINTS = st.sampled_from([TOKEN_URL, INTROSPECT_URL, REVOKE_URL])
PARAM_NAMES = st.sampled_from(
    ["grant_type", "client_id", "client_secret", "scope", "token", "token_type_hint", "x"]
)
PARAM_VALUES = st.one_of(
    st.sampled_from(["client_credentials", "password", "", "orders:read", "a.b.c"]),
    st.text(max_size=60),
)
CONTENT_TYPES = st.one_of(
    st.sampled_from(
        [FORM, FORM + "; charset=utf-8", FORM + "; charset=latin-1", "application/json", ""]
    ),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
)
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=255), max_size=80)
AUTHORIZATION = st.one_of(
    st.none(),
    HEADER_TEXT,
    st.builds(lambda s: "Basic " + s, HEADER_TEXT),
    st.builds(lambda s: "Bearer " + s, HEADER_TEXT),
)
HYPOTHESIS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _form(pairs: list[tuple[str, str]]) -> str:
    from urllib.parse import urlencode

    return urlencode(pairs)


@pytest.mark.django_db
class TestMalformedRequests:
    @HYPOTHESIS
    @given(
        endpoint=ENDPOINTS,
        body=st.binary(max_size=300),
        content_type=CONTENT_TYPES,
        authorization=AUTHORIZATION,
    )
    def test_it_survives_random_bodies(self, endpoint, body, content_type, authorization):
        extra = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
        # generic() sends the bytes as they are; post() would transcode them by charset.
        response = HttpClient().generic("POST", endpoint, body, content_type=content_type, **extra)
        assert response.status_code < 500

    @HYPOTHESIS
    @given(
        endpoint=ENDPOINTS,
        pairs=st.lists(st.tuples(PARAM_NAMES, PARAM_VALUES), max_size=8),
        use_basic=st.booleans(),
    )
    def test_it_survives_repeated_and_odd_parameters(self, registered, endpoint, pairs, use_basic):
        client, secret = registered
        extra = {"HTTP_AUTHORIZATION": basic(client.client_id, secret)} if use_basic else {}
        response = HttpClient().generic("POST", endpoint, _form(pairs), content_type=FORM, **extra)
        assert response.status_code < 500

    @HYPOTHESIS
    @given(
        endpoint=ENDPOINTS,
        method=st.one_of(
            st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"]),
            st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=10),
        ),
        headers=st.dictionaries(
            st.sampled_from(
                [
                    "HTTP_X_FORWARDED_FOR",
                    "HTTP_USER_AGENT",
                    "REMOTE_ADDR",
                    "CONTENT_LENGTH",
                    "HTTP_AUTHORIZATION",
                    "HTTP_HOST",
                ]
            ),
            HEADER_TEXT,
        ),
    )
    def test_it_survives_random_methods_and_headers(self, endpoint, method, headers, settings):
        settings.KEYWARD_TRUSTED_PROXIES = ["127.0.0.1", "::1"]
        headers.pop("HTTP_HOST", None)  # a bad Host is Django's 400 before us
        response = HttpClient().generic(
            method, endpoint, b"grant_type=client_credentials", content_type=FORM, **headers
        )
        assert response.status_code < 500


# --- The same through Django's WSGI handler, as the server calls it ----------------------

HEADER_BYTES = st.binary(max_size=80).map(lambda raw: raw.replace(b"\r", b"").replace(b"\n", b""))
HEADER_NAMES = st.sampled_from(
    ["content-type", "authorization", "content-length", "x-forwarded-for", "host", "x_y"]
)


def _wsgi_answer(path: str, headers: list[tuple[str, bytes]], body: bytes) -> tuple[str, dict]:
    """One request through WSGIHandler with a raw environ: header values as the server
    passes them (latin-1 strings, PEP 3333), a body whose Content-Length may lie."""
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": FORM,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
    }
    for name, value in headers:
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        environ[key] = value.decode("latin-1")
    answer: dict = {}

    def start_response(status, response_headers, exc_info=None):
        answer.update(status=status, headers=dict(response_headers))

    b"".join(WSGIHandler()(environ, start_response))
    return answer["status"], answer["headers"]


class TestMalformedRequestsThroughTheWSGIHandler:
    @HYPOTHESIS
    @given(
        endpoint=ENDPOINTS,
        headers=st.lists(st.tuples(HEADER_NAMES, HEADER_BYTES), max_size=6),
        body=st.binary(max_size=400),
    )
    def test_it_never_answers_5xx(self, transactional_db, endpoint, headers, body):
        status, response_headers = _wsgi_answer(endpoint, headers, body)
        assert int(status.split()[0]) < 500, status
        # The protocol's own JSON error (RFC 6749 §5.2), never Django's HTML.
        assert response_headers["Content-Type"] == "application/json", response_headers
