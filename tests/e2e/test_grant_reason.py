"""An operator records why a client holds a scope, in Chromium: the finding that asked for
it tells where, the client page's form saves it, and the next scan resolves the finding."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from audit.models import AdminAction
from clients.models import ScopeGrant
from reviews.models import Finding
from reviews.scan import findings_scan
from tests.conftest import make_user

from .test_register_client import log_in

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.e2e


@pytest.fixture
def operator_login(role_groups) -> str:
    return make_user("oona-operator", "operator").username


@pytest.fixture
def unexplained(role_groups, make_scope, make_client):
    """A grant with no recorded reason, and the open finding about it."""
    client, _ = make_client("Billing service", scopes=[make_scope("orders:read")])
    ScopeGrant.objects.filter(client=client).update(reason="")
    findings_scan()
    return client


class TestRecordAGrantReason:
    def test_the_finding_leads_to_the_form_and_the_reason_resolves_it(
        self, live_server, page, operator_login, unexplained
    ):
        log_in(page, live_server.url, operator_login)
        page.goto(f"{live_server.url}/reviews/findings/?kind=grant_no_reason")
        page.get_by_role("link", name="the client's page").click()

        scopes = page.locator("#client-scopes")
        scopes.get_by_text("Record a reason").click()
        scopes.get_by_label("Why this client holds orders:read").fill("Nightly invoice export")
        scopes.get_by_role("button", name="Save reason").click()

        expect(page.get_by_text("Saved the reason for orders:read.")).to_be_visible()
        expect(page.locator("#client-scopes")).to_contain_text("Nightly invoice export")
        row = AdminAction.objects.get(action="scope.grant_reason")
        assert row.after == {"scope": "orders:read", "reason": "Nightly invoice export"}
        findings_scan()
        assert Finding.objects.get(kind="grant_no_reason").status == "resolved"
