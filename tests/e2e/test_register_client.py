"""A platform engineer's first job, end to end in Chromium: log in, register a client,
copy its one-time secret, grant a scope inline, and find the change on record."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

from audit.models import AdminAction
from clients.models import Client, ClientSecret, ScopeGrant
from clients.secrets import secret_hash
from tests.conftest import PASSWORD, make_user

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.e2e


@pytest.fixture
def operator_login(role_groups) -> str:
    return make_user("olga-operator", "operator").username


@pytest.fixture
def catalogue(role_groups, make_scope):
    make_scope("orders:read", description="Read orders")
    make_scope("orders:write", description="Create and change orders")


def log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


class TestRegisterClient:
    def test_it_registers_shows_the_secret_once_grants_a_scope_and_records_it(
        self, live_server, page, operator_login, catalogue
    ):
        log_in(page, live_server.url, operator_login)

        # Register from the clients list, with one initial scope.
        page.get_by_role("link", name="Clients").click()
        # Pico styles links as buttons through role="button", which is what they announce.
        page.get_by_role("button", name="Register your first client").click()
        page.get_by_label("Name").fill("Billing service")
        page.get_by_label("Owner email").fill("billing@example.com")
        page.get_by_label("Environment").select_option("production")
        page.get_by_label("Allowed networks").fill("10.0.0.0/8")
        page.get_by_role("checkbox", name="orders:read").check()
        page.get_by_role("button", name="Register client").click()

        # The one-time secret page.
        expect(page.get_by_text("will not show it again")).to_be_visible()
        secret = page.locator("#client-secret").inner_text().strip()
        client = Client.objects.get(name="Billing service")
        assert secret.startswith("kwsec_")
        assert secret_hash(secret) == ClientSecret.objects.get(client=client).secret_hash
        expect(page.locator("#client-id")).to_have_text(client.client_id)
        page.locator('[data-copy-target="#client-secret"]').click()
        expect(page.locator('[data-copy-target="#client-secret"]')).not_to_have_text("Copy")

        # The client page shows only the hint, then grants a second scope through htmx.
        page.get_by_role("button", name="Go to the client page").click()
        expect(page.get_by_role("heading", name=re.compile("Billing service"))).to_be_visible()
        assert secret not in page.content()
        page.evaluate("window.__notReloaded = true")
        page.get_by_label("Add scope").select_option("orders:write")
        page.get_by_label("Reason").fill("ticket OPS-7")
        page.get_by_role("button", name="Grant").click()
        scopes = page.locator("#client-scopes")
        expect(scopes.get_by_role("link", name="orders:write")).to_be_visible()
        expect(scopes.get_by_text("ticket OPS-7")).to_be_visible()
        assert page.evaluate("window.__notReloaded") is True, "the page reloaded: not htmx"
        assert ScopeGrant.objects.filter(client=client, scope__name="orders:write").exists()

        # The grant is on record, in the recent-changes list the response updated.
        audit = page.locator("#client-audit")
        grant_row = audit.locator("tr", has_text="scope.grant").filter(has_text="orders:write")
        expect(grant_row).to_be_visible()
        expect(grant_row).to_contain_text(operator_login)
        assert AdminAction.objects.filter(
            action="scope.grant", target_id=client.client_id, actor_label=operator_login
        ).exists()

        # And it is still there after a full reload; the secret is not.
        page.reload()
        expect(page.locator("#client-audit").get_by_text("scope.grant").first).to_be_visible()
        assert secret not in page.content()


class TestClientListLiveSearch:
    def test_it_filters_as_you_type_and_keeps_the_url(
        self, live_server, page, operator_login, make_client
    ):
        make_client("Billing service", environment="production")
        make_client("Shipping service")
        log_in(page, live_server.url, operator_login)
        page.goto(f"{live_server.url}/clients/")
        page.evaluate("window.__notReloaded = true")
        rows = page.locator("#client-results tbody tr")
        expect(rows).to_have_count(2)

        page.get_by_label("Search clients").fill("bill")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("Billing service")
        expect(page).to_have_url(re.compile(r"/clients/\?q=bill"))

        page.get_by_label("Search clients").fill("")
        page.get_by_label("Environment").select_option("development")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("Shipping service")
        assert page.evaluate("window.__notReloaded") is True, "the page reloaded: not htmx"
