from __future__ import annotations

import time

from clients.models import ClientSecret
from clients.secrets import secret_generate, secret_hash, secret_hint
from tokens.client_cache import RELOAD_INTERVAL_SECONDS, client_lookup


class TestSecretNewerThanTheCache:
    def test_it_accepts_a_secret_created_by_another_process_at_once(self, make_client, client):
        registered, _old = make_client(scopes=[])
        client_lookup(registered.client_id)  # this process now holds a copy without the new one
        # As a rotation in another process would: a new row, no signal in this process.
        new = secret_generate()
        ClientSecret.objects.create(
            client=registered, secret_hash=secret_hash(new), hint=secret_hint(new)
        )
        time.sleep(RELOAD_INTERVAL_SECONDS)
        response = client.post(
            "/token-srv/token",
            "grant_type=client_credentials",
            content_type="application/x-www-form-urlencoded",
            HTTP_AUTHORIZATION=_basic(registered.client_id, new),
        )
        assert response.status_code == 200, response.content


def _basic(client_id: str, secret: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
