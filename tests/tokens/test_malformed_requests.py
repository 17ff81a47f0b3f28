"""Property tests: no input to the three endpoints produces a server error."""

from __future__ import annotations

import pytest
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
