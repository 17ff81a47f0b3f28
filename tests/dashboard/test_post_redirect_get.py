"""Every console POST that changes something answers with a redirect (POST-redirect-GET),
so reloading the page it leads to repeats nothing.

The first test asks every console URL which methods it allows (OPTIONS answers with an
`Allow` header), so a POST view added later without a row below fails here.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.urls.converters import UUIDConverter

from analytics.ingestion_tokens import ingestion_token_create
from audit.models import AdminAction
from audit.services import Actor
from clients.models import Client, Scope
from tests.conftest import PASSWORD
from tests.dashboard.test_role_matrix import ALL_URLS, is_public

NEW_PASSWORD = "a-much-longer-passphrase-42"


@pytest.fixture
def world(admin_user, make_client, make_scope, viewer):
    billing, _ = make_client("Billing", scopes=[make_scope("orders:read")])
    make_scope("spare:read")
    make_scope("unused:read")
    return {
        "client_id": billing.client_id,
        "secret_id": billing.secrets.get().pk,
        "name": "unused:read",
        "scope_name": "orders:read",
        "username": viewer.username,
        "pk": 1,  # alerts' rows: OPTIONS is answered before any lookup
        "token_id": ingestion_token_create(
            actor=Actor.cli(), name="Okta", source="okta-prod", expires_at=None
        )[0].pk,
    }


# url name → (kwargs names, POST data that changes something). Each must answer 302.
MUTATING_POSTS = {
    "clients:register": (
        {},
        {"name": "New", "environment": "staging", "access_token_lifetime": 60},
    ),
    "clients:edit": (
        {"client_id"},
        {"name": "Renamed", "environment": "development", "access_token_lifetime": 60},
    ),
    "clients:set_status": ({"client_id"}, {"status": "active"}),
    "clients:disable": ({"client_id"}, {}),
    "clients:delete": ({"client_id"}, {"confirm_name": "Billing"}),
    "clients:scope_add": ({"client_id"}, {"scope": "spare:read"}),
    "clients:scope_remove": ({"client_id", "scope_name"}, {}),
    "clients:scope_reason": ({"client_id", "scope_name"}, {"reason": "Nightly invoice export"}),
    "clients:scope_create": ({}, {"name": "fresh:read"}),
    "clients:scope_edit": ({"name"}, {"description": "changed"}),
    "clients:scope_delete": ({"name"}, {}),
    "security:settings": (
        {},
        {
            "environment": "staging",
            "staging-environment": "staging",
            "staging-max_secret_age_days": "30",
        },
    ),
    "security:rotate": ({"client_id"}, {"grace_choice": "24h"}),
    "security:revoke_secret": ({"client_id", "secret_id"}, {}),
    "dashboard:user_create": ({}, {"username": "nina", "role": "viewer"}),
    "dashboard:user_set_role": ({"username"}, {"role": "operator"}),
    "dashboard:user_set_active": ({"username"}, {"active": "0"}),
    "dashboard:user_password_reset": ({"username"}, {}),
    "dashboard:password_change": (
        {},
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    ),
    "tokens:rotate": ({}, {"algorithm": "ES256", "force": "accept-cache-miss"}),
    "dashboard:user_two_factor_reset": ({"username"}, {}),
    "analytics:ingestion_token_new": (
        {},
        {"name": "Keycloak", "source": "keycloak-prod", "expires_in_days": "90"},
    ),
    "analytics:ingestion_token_revoke": ({"token_id"}, {}),
    "dashboard:two_factor_confirm": ({}, {}),
    "dashboard:two_factor_recovery_codes": ({}, {}),
}
# The alerts app's POSTs: each answers with a redirect, checked with the data each needs (an
# alert raised by traffic, a destination, a suppression) in tests/alerts/test_views.py; the
# ones that show a secret go through base/once.py (tests there and below).
ALERTS_POSTS = {
    "alerts:bulk",
    "alerts:acknowledge",
    "alerts:resolve",
    "alerts:assign",
    "alerts:comment",
    "alerts:respond_disable",
    "alerts:respond_revoke",
    "alerts:respond_rotate",
    "alerts:respond_block",
    "alerts:suppress",
    "alerts:suppressions",
    "alerts:suppression_lift",
    "alerts:settings",
    "alerts:destinations",
    "alerts:destination_rotate",
    "alerts:destination_delete",
}
# The scope review's POSTs: each answers with a redirect and writes its audit row, checked
# with the finding, applied change or campaign each needs in tests/reviews/test_views.py
# and tests/reviews/test_campaign_views.py.
REVIEWS_POSTS = {
    "reviews:finding_archive",
    "reviews:apply",
    "reviews:rollback",
    "reviews:campaign_new",
    "reviews:campaign_decide",
    "reviews:campaign_close",
}
# The login's second step: it changes nothing but the session, like the login form itself
# (tests/dashboard/test_two_factor.py checks it redirects once the code is right).
SIGN_IN_STEPS = {"dashboard:two_factor_verify"}


def prepare(name: str, world: dict, admin_user, data: dict) -> dict:
    """What a row needs beyond the shared world: an authenticator to reset or to renew the
    codes of, or an enrolment to confirm with the app's current code."""
    from dashboard import two_factor
    from tests.dashboard.test_two_factor import code_now, enrol

    if name == "clients:set_status":  # enabling needs a disabled client
        Client.objects.filter(client_id=world["client_id"]).update(status="disabled")
    if name == "dashboard:user_two_factor_reset":
        enrol(User.objects.get(username=world["username"]))
    if name == "dashboard:two_factor_recovery_codes":
        enrol(admin_user)
    if name == "dashboard:two_factor_confirm":
        device = two_factor.two_factor_enrolment_start(user=admin_user)
        data = data | {"code": code_now(device)}
    return data


def console_patterns():
    return [(route, name, p) for route, name, p in ALL_URLS if not is_public(route, name)]


def url_for(name: str, pattern, world: dict) -> str:
    kwargs = {}
    for key, converter in pattern.pattern.converters.items():
        uuid_pk = isinstance(converter, UUIDConverter) and key == "pk"
        kwargs[key] = REVIEW_CHANGE_ID if uuid_pk else world[key]
    return reverse(name, kwargs=kwargs)


# An applied change's or a campaign's id: OPTIONS is answered before any lookup.
REVIEW_CHANGE_ID = "00000000-0000-4000-8000-000000000001"


class TestEveryPostRedirects:
    def test_every_console_url_that_takes_a_post_is_listed(self, admin_client, world):
        takes_post = set()
        for _route, name, pattern in console_patterns():
            response = admin_client.options(url_for(name, pattern, world))
            allowed = response.headers.get("Allow", "")
            if "POST" in allowed:
                takes_post.add(name)
        assert takes_post - SIGN_IN_STEPS - ALERTS_POSTS - REVIEWS_POSTS == set(MUTATING_POSTS), (
            "a console POST view without a POST-redirect-GET check below"
        )

    @pytest.mark.parametrize("name", sorted(MUTATING_POSTS))
    def test_it_answers_a_change_with_a_redirect(self, admin_client, admin_user, world, name):
        _kwargs, data = MUTATING_POSTS[name]
        pattern = next(p for _r, n, p in console_patterns() if n == name)
        data = prepare(name, world, admin_user, data)
        before = AdminAction.objects.count()
        response = admin_client.post(url_for(name, pattern, world), data)
        assert response.status_code == 302, f"{name} answered {response.status_code}"
        assert AdminAction.objects.count() > before, f"{name} changed nothing"

    def test_the_fixture_world_is_what_the_rows_expect(self, world):
        assert Scope.objects.filter(name="unused:read", grants__isnull=True).exists()
        assert User.objects.filter(username=world["username"]).exists()
