"""Who and where an audit row says a change came from."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AdminAction

CREATE_SCOPE = reverse("clients:scope_create")


class TestActorAddress:
    @pytest.mark.parametrize(
        ("trusted", "remote", "forwarded", "recorded"),
        [
            # No trusted proxies: the socket address, whatever the header says.
            ([], "198.51.100.7", "203.0.113.9", "198.51.100.7"),
            # Behind a trusted proxy: the right-most hop the proxies did not add.
            (["10.0.0.0/8"], "10.1.2.3", "203.0.113.9, 10.9.9.9", "203.0.113.9"),
            # From an untrusted peer the header is ignored.
            (["10.0.0.0/8"], "198.51.100.7", "203.0.113.9", "198.51.100.7"),
        ],
    )
    def test_it_records_the_client_address_by_the_trusted_proxy_rule(
        self, admin_client, settings, trusted, remote, forwarded, recorded
    ):
        settings.KEYWARD_TRUSTED_PROXIES = trusted
        admin_client.post(
            CREATE_SCOPE,
            {"name": "orders:read"},
            REMOTE_ADDR=remote,
            HTTP_X_FORWARDED_FOR=forwarded,
        )
        assert AdminAction.objects.get(action="scope.create").ip == recorded
