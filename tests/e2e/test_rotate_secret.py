"""Zero-downtime rotation end to end in Chromium: rotate a live client's secret from its page
with a 24-hour grace, prove both secrets get tokens, revoke the old one through the
confirmation page, and prove the token service refuses it while the new one still works."""

from __future__ import annotations

import os
import re
import time

import pytest
import requests
from playwright.sync_api import expect

from analytics.drain import token_events_drain
from audit.services import Actor
from clients import services
from clients.models import ClientSecret
from clients.secrets import secret_hash
from tests.conftest import make_user
from tests.e2e.test_register_client import log_in

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.e2e

# The token service caches clients for 0.9 s per process; a revocation must bite within 1 s.
REFUSAL_DEADLINE = 2.0


def token_request(base_url: str, client_id: str, secret: str) -> requests.Response:
    return requests.post(
        f"{base_url}/token-srv/token",
        data={"grant_type": "client_credentials", "scope": "orders:read"},
        auth=(client_id, secret),
        timeout=10,
    )


def assert_gets_token(base_url: str, client_id: str, secret: str) -> None:
    response = token_request(base_url, client_id, secret)
    assert response.status_code == 200, response.text
    assert response.json()["access_token"]


def refused_within(base_url: str, client_id: str, secret: str, seconds: float):
    """Poll until the secret is refused; returns the refusal, or the last answer on timeout."""
    deadline = time.monotonic() + seconds
    while True:
        response = token_request(base_url, client_id, secret)
        if response.status_code != 200 or time.monotonic() >= deadline:
            return response
        time.sleep(0.1)


@pytest.fixture
def operator_login(role_groups) -> str:
    return make_user("olga-operator", "operator").username


@pytest.fixture
def billing(role_groups):
    scope = services.scope_create(actor=Actor.cli(), name="orders:read")
    return services.client_register(actor=Actor.cli(), name="Billing service", scopes=[scope])


class TestRotateSecret:
    def test_it_rotates_with_overlap_then_revokes_the_old_secret(
        self, live_server, page, operator_login, billing
    ):
        client, old_plain = billing
        base = live_server.url
        old = client.secrets.get()
        assert_gets_token(base, client.client_id, old_plain)

        # Rotate from the client page: the dialog arrives through htmx.
        log_in(page, base, operator_login)
        page.goto(f"{base}/clients/{client.client_id}/")
        page.evaluate("window.__notReloaded = true")
        page.get_by_role("button", name="Rotate secret").click()
        dialog = page.locator("#rotate-dialog-modal")
        expect(dialog).to_be_visible()
        assert page.evaluate("window.__notReloaded") is True, "the page reloaded: not htmx"
        dialog.get_by_label("24 hours").check()
        dialog.get_by_role("button", name="Rotate now").click()

        # The one-time secret page.
        expect(page.get_by_text("will not show it again")).to_be_visible()
        new_plain = page.locator("#client-secret").inner_text().strip()
        new = client.secrets.exclude(pk=old.pk).get()
        assert new_plain.startswith("kwsec_") and new_plain != old_plain
        assert secret_hash(new_plain) == new.secret_hash
        expect(page.get_by_text(old.hint)).to_be_visible()  # "keeps working until …"

        # The overlap: both secrets get tokens; the consumer switches from old to new.
        assert_gets_token(base, client.client_id, old_plain)
        assert_gets_token(base, client.client_id, new_plain)

        # Once the new secret took over, the old one reads safe to revoke (events drained).
        token_events_drain()
        page.get_by_role("button", name="Go to the client page").click()
        old_row = page.locator(f"#secret-{old.pk}")
        expect(old_row).to_contain_text("safe to revoke")

        # Someone still holding the old secret uses it again: the page says so.
        assert_gets_token(base, client.client_id, old_plain)
        token_events_drain()
        page.reload()
        in_use = re.compile(r"in use — last used (just now|.* ago) from 127\.0\.0\.1")
        expect(old_row).to_contain_text(in_use)

        # Revoke the old secret through the confirmation page, back to the client page.
        old_row.get_by_role("button", name=f"Revoke {old.hint}").click()
        expect(page.get_by_role("heading", name=re.compile("Revoke secret"))).to_be_visible()
        page.get_by_role("button", name=f"Revoke {old.hint}").click()
        expect(page.get_by_text(f"Revoked {old.hint}")).to_be_visible()
        expect(page.locator(f"#secret-{old.pk}")).to_contain_text("revoked")
        assert ClientSecret.objects.get(pk=old.pk).is_revoked()

        # The token service refuses the old secret within the deadline; the new one works.
        refusal = refused_within(base, client.client_id, old_plain, REFUSAL_DEADLINE)
        assert refusal.status_code == 401, refusal.text
        assert refusal.json()["error"] == "invalid_client"
        assert_gets_token(base, client.client_id, new_plain)
