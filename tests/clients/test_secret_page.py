"""The one-time secret page: the secret once, then how to get another; a copy-paste curl
for the token endpoint with the client's id (and its scopes)."""

from __future__ import annotations

from django.urls import reverse

REGISTER = {
    "name": "Billing",
    "environment": "staging",
    "access_token_lifetime": "3600",
    "scopes": ["orders:read", "orders:write"],
}


class TestCurl:
    def test_it_shows_a_curl_for_the_token_endpoint(self, operator_client, make_scope, settings):
        make_scope("orders:read")
        make_scope("orders:write")
        response = operator_client.post(reverse("clients:register"), REGISTER, follow=True)
        client = response.context["client"]
        token_url = settings.KEYWARD_ISSUER + reverse("tokens:token")
        expected = (
            f"curl -u {client.client_id} -d grant_type=client_credentials "
            f"-d &#x27;scope=orders:read orders:write&#x27; {token_url}"
        )
        assert expected in response.text
        assert 'data-copy-target="#token-curl"' in response.text

    def test_the_curl_stays_after_the_secret_is_gone(self, operator_client, make_client):
        client, _ = make_client("Billing")
        text = operator_client.get(reverse("clients:secret", args=[client.client_id])).text
        assert "already shown" in text and f"curl -u {client.client_id}" in text

    def test_the_token_url_follows_the_issuer(self, operator_client, make_client, settings):
        settings.KEYWARD_ISSUER = "https://auth.example.com"
        client, _ = make_client("Billing")
        text = operator_client.get(reverse("clients:secret", args=[client.client_id])).text
        assert "https://auth.example.com/token-srv/token" in text
