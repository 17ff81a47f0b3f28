"""Identifiers in URLs that PostgreSQL could not even compare (a NUL byte) are a 404."""

from __future__ import annotations

import pytest

NUL_URLS = [
    ("get", "/clients/scopes/a%00b/"),
    ("get", "/clients/scopes/a%00b/edit/"),
    ("post", "/clients/scopes/a%00b/delete/"),
    ("get", "/clients/a%00b/"),
    ("post", "/users/a%00b/role/"),
    ("post", "/users/a%00b/active/"),
    ("get", "/security/clients/a%00b/rotate/"),
]


class TestMalformedIdentifiers:
    @pytest.mark.parametrize(("method", "url"), NUL_URLS)
    def test_it_answers_404_not_500(self, admin_client, method, url):
        response = getattr(admin_client, method)(url)
        assert response.status_code == 404

    def test_it_answers_404_for_a_nul_in_the_scope_of_a_grant(self, admin_client, make_client):
        client, _ = make_client()
        response = admin_client.post(f"/clients/{client.client_id}/scopes/a%00b/remove/")
        assert response.status_code == 404
