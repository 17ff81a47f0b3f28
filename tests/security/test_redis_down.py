"""With Redis unreachable the console still registers clients and rotates secrets: the
cache fails soft (base/cache.py) and the secret policy is read from the database."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse

from clients.models import Client, ClientSecret
from security.models import SecretPolicy

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connections are refused
REGISTER = {
    "name": "Billing",
    "owner_email": "pay@example.com",
    "environment": "production",
    "access_token_lifetime": "900",
}


@pytest.fixture
def redis_down(settings):
    # The cache as configured for production (tests run with REDIS_URL), pointed at nothing.
    settings.CACHES = {"default": settings.CACHES["default"] | {"LOCATION": DEAD_REDIS}}


class TestRedisDown:
    def test_it_registers_a_client(self, redis_down, operator_client, db):
        response = operator_client.post(reverse("clients:register"), REGISTER, follow=True)
        assert response.status_code == 200
        assert "will not show it again" in response.text
        client = Client.objects.get(name="Billing")
        # The policy came from the database: production secrets expire.
        assert client.secrets.get().expires_at is not None

    def test_it_rotates_a_secret(self, redis_down, operator_client, make_client):
        client, _old = make_client("Billing", environment="production")
        url = reverse("security:rotate", args=[client.client_id])
        response = operator_client.post(url, {"grace_choice": "24h"}, follow=True)
        assert response.status_code == 200
        assert "will not show it again" in response.text
        assert ClientSecret.objects.filter(client=client).count() == 2

    def test_it_reads_the_policy_from_the_database(self, redis_down, db):
        SecretPolicy.objects.update_or_create(
            environment="staging", defaults={"max_secret_age_days": 7}
        )
        assert cache.get("anything", "missed") == "missed"
        assert SecretPolicy.for_environment("staging").max_secret_age_days == 7
        cache.set("anything", 1)
        cache.delete("anything")
