"""Who and where an audit row says a change came from."""

from __future__ import annotations

from django.urls import reverse

from audit.models import AdminAction

CREATE_SCOPE = reverse("clients:scope_create")


class TestActorAddress:
    def test_it_records_the_socket_address_without_trusted_proxies(self, admin_client):
        admin_client.post(
            CREATE_SCOPE,
            {"name": "orders:read"},
            REMOTE_ADDR="198.51.100.7",
            HTTP_X_FORWARDED_FOR="203.0.113.9",
        )
        assert AdminAction.objects.get(action="scope.create").ip == "198.51.100.7"

    def test_it_records_the_client_behind_a_trusted_proxy(self, admin_client, settings):
        settings.KEYWARD_TRUSTED_PROXIES = ["10.0.0.0/8"]
        admin_client.post(
            CREATE_SCOPE,
            {"name": "orders:read"},
            REMOTE_ADDR="10.1.2.3",
            HTTP_X_FORWARDED_FOR="203.0.113.9, 10.9.9.9",
        )
        assert AdminAction.objects.get(action="scope.create").ip == "203.0.113.9"

    def test_it_ignores_forwarded_headers_from_untrusted_peers(self, admin_client, settings):
        settings.KEYWARD_TRUSTED_PROXIES = ["10.0.0.0/8"]
        admin_client.post(
            CREATE_SCOPE,
            {"name": "orders:read"},
            REMOTE_ADDR="198.51.100.7",
            HTTP_X_FORWARDED_FOR="203.0.113.9",
        )
        assert AdminAction.objects.get(action="scope.create").ip == "198.51.100.7"
