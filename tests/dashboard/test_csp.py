"""Every page carries the Content-Security-Policy, and no page has inline script for it to
block (an inline <script>, an on…= handler) or an inline style attribute."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from analytics.ingestion_tokens import ingestion_token_create
from audit.services import Actor
from reviews.campaigns import campaign_start
from reviews.models import GrantChange
from security.models import SecretFinding
from tests.dashboard.test_role_matrix import ALL_URLS

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<[^>]+\sstyle\s*=|<style", re.IGNORECASE)

# Only the token service's endpoints and its two JSON documents skip the policy
# (tokens/middleware.py): they answer machines, ahead of the middleware stack.
SHORTCUT = {"tokens:token", "tokens:introspect", "tokens:revoke", "tokens:jwks", "tokens:metadata"}
PAGES = [(route, name, p) for route, name, p in ALL_URLS if name not in SHORTCUT]


@pytest.fixture
def url_args(make_client, make_scope, admin_user):
    """A real object for each kind of URL argument, and an open finding so the security page
    shows its per-row actions."""
    scope = make_scope("csp:read")
    client, _secret = make_client("CSP", scopes=[scope])
    SecretFinding.objects.create(kind=SecretFinding.Kind.CLIENT_DORMANT, client=client)
    alert, suppression, destination = _alert_objects(client)
    token, _plain = ingestion_token_create(actor=Actor.cli(), name="CSP", source="csp")
    change = GrantChange.objects.create(
        client_id=client.client_id, client_name=client.name, applied_by_label="cli"
    )
    campaign = campaign_start(
        actor=Actor.cli(),
        name="CSP review",
        selection="all",
        deadline=timezone.now() + timedelta(days=7),
        no_response_policy="keep",
        fallback_reviewer=admin_user,
    )
    return {
        "token_id": token.pk,
        # `pk` is an alert's, except on the suppression and destination pages (by URL name).
        "pk": alert.pk,
        "pk:alerts:suppression_lift": suppression.pk,
        "pk:alerts:destination_detail": destination.pk,
        "pk:alerts:destination_rotate": destination.pk,
        "pk:alerts:destination_delete": destination.pk,
        "pk:reviews:change": change.pk,
        "pk:reviews:rollback": change.pk,
        **{
            f"pk:reviews:{view}": campaign.pk
            for view in ("campaign", "campaign_decide", "campaign_close", "campaign_report")
            + ("campaign_report_csv",)
        },
        "client_id": client.client_id,
        "secret_id": client.secrets.get().pk,
        "name": scope.name,
        "scope_name": scope.name,
        "username": admin_user.username,
    }


def _alert_objects(client):
    from datetime import timedelta

    from django.utils import timezone

    from alerts.detections import Subject
    from alerts.services import alert_raise, destination_create, suppression_create
    from audit.services import Actor

    subject = Subject(client_id=client.client_id, network="192.0.2.0/24")
    alert = alert_raise(
        rule="allowlist_violation",
        subject=subject,
        evidence={},
        seen_at=timezone.now(),
        client=client,
    ).alert
    suppression = suppression_create(
        actor=Actor.cli(),
        rule="brute_force",
        reason="csp",
        expires_at=timezone.now() + timedelta(hours=1),
    )
    destination, _ = destination_create(
        actor=Actor.cli(), name="csp", kind="webhook", target="https://hooks.example.com/x"
    )
    return alert, suppression, destination


def assert_hardened(response) -> None:
    policy = response.headers.get("Content-Security-Policy", "")
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    if response.headers.get("Content-Type", "").startswith("text/html"):
        html = response.content.decode()
        assert not INLINE_SCRIPT.search(html), INLINE_SCRIPT.search(html).group(0)
        assert not INLINE_HANDLER.search(html), INLINE_HANDLER.search(html).group(0)
        assert not INLINE_STYLE.search(html), INLINE_STYLE.search(html).group(0)


class TestContentSecurityPolicy:
    @pytest.mark.parametrize(("route", "name", "pattern"), PAGES, ids=[n for _r, n, _p in PAGES])
    def test_it_covers_every_page_without_inline_script(
        self, admin_client, url_args, route, name, pattern
    ):
        kwargs = {
            key: url_args.get(f"{key}:{name}", url_args.get(key))
            for key in pattern.pattern.converters
        }
        url = reverse(name, kwargs=kwargs)
        for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
            assert_hardened(admin_client.get(url, **headers))

    def test_it_covers_the_login_page(self, anonymous_client):
        response = anonymous_client.get(reverse("login"))
        assert response.status_code == 200
        assert_hardened(response)

    def test_it_finds_inline_script(self):
        assert INLINE_SCRIPT.search("<script>alert(1)</script>")
        assert not INLINE_SCRIPT.search('<script src="/static/x.js" defer></script>')
        assert INLINE_HANDLER.search('<form method="post" onsubmit="return confirm()">')
        assert not INLINE_HANDLER.search('<form data-confirm="Disable it?">')
        assert INLINE_STYLE.search('<body style="color: red">')
