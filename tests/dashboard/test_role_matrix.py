"""Every dashboard URL checks a role, and the concrete pages answer each persona as expected.

The first test walks the whole URL resolver, so a view added later without
`role_required` fails here even if nobody writes a test for it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.views.decorators.http import require_GET

from base.roles import Role, role_required

# The only views anyone may reach without a role: logging in and out, the load balancer's
# health check, the token service's protocol endpoints (they authenticate clients, not
# dashboard users) and the log-ingestion API (it authenticates ingestion tokens).
PUBLIC_NAMES = {"login", "logout", "healthz", "healthz_web"}
PUBLIC_PREFIXES = ("token-srv/", ".well-known/", "api/", "analytics/api/")


def walk(patterns, prefix: str = "", namespace: str = "") -> Iterator[tuple[str, str, URLPattern]]:
    """Yield (route, qualified name, pattern) for every URL the project serves."""
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = namespace
            if entry.namespace:
                inner = f"{namespace}{entry.namespace}:"
            yield from walk(entry.url_patterns, route, inner)
        else:
            yield route, f"{namespace}{entry.name or ''}", entry


def is_public(route: str, name: str) -> bool:
    return name in PUBLIC_NAMES or route.lstrip("^").startswith(PUBLIC_PREFIXES)


def required_role(view) -> Role | None:
    while view is not None:
        role = getattr(view, "required_role", None)
        if role is not None:
            return role
        view = getattr(view, "__wrapped__", None)
    return None


ALL_URLS = list(walk(get_resolver().url_patterns))
DASHBOARD_URLS = [(route, name, p) for route, name, p in ALL_URLS if not is_public(route, name)]


class TestEveryViewChecksARole:
    def test_it_finds_the_dashboard_urls(self):
        names = {name for _route, name, _p in DASHBOARD_URLS}
        assert {"dashboard:overview", "dashboard:users", "audit:list", "audit:export"} <= names
        assert not names & PUBLIC_NAMES

    def test_it_tells_a_decorated_view_from_a_bare_one(self):
        def bare(request):
            return None

        assert required_role(bare) is None
        assert required_role(require_GET(role_required(Role.OPERATOR)(bare))) is Role.OPERATOR

    @pytest.mark.parametrize(
        ("route", "name", "pattern"), DASHBOARD_URLS, ids=[n or r for r, n, _p in DASHBOARD_URLS]
    )
    def test_it_requires_a_role(self, route, name, pattern):
        role = required_role(pattern.callback)
        assert isinstance(role, Role), f"{route} ({name}) has no role_required decorator"


CLIENT, SECRET = "<client_id>", "<secret_id>"

# (method, url name, args, data) → expected status for anonymous, viewer, operator, admin.
# Anonymous visitors are sent to the login page (302). POST rows use harmless data: a
# no-op role change, an invalid user form.
CASES = [
    ("get", "dashboard:overview", [], None, (302, 200, 200, 200)),
    ("get", "audit:list", [], None, (302, 200, 200, 200)),
    ("get", "audit:export", [], None, (302, 200, 200, 200)),
    ("get", "dashboard:users", [], None, (302, 403, 403, 200)),
    ("post", "dashboard:user_create", [], {}, (302, 403, 403, 400)),
    ("post", "dashboard:user_set_role", ["vera-viewer"], {"role": "viewer"}, (302, 403, 403, 302)),
    ("post", "dashboard:user_set_active", ["vera-viewer"], {"active": "1"}, (302, 403, 403, 302)),
    ("get", "dashboard:user_create", [], None, (405, 405, 405, 405)),
    ("post", "audit:list", [], {}, (405, 405, 405, 405)),
    # Secret lifecycle. CLIENT / SECRET stand for a client made by the test and its secret.
    # The POSTs are harmless: no environment, no grace choice (both answer 400).
    ("get", "security:health", [], None, (302, 200, 200, 200)),
    ("post", "security:health", [], {}, (405, 405, 405, 405)),
    ("get", "security:settings", [], None, (302, 200, 200, 200)),
    ("post", "security:settings", [], {}, (302, 403, 403, 400)),
    ("get", "security:rotate", [CLIENT], None, (302, 403, 200, 200)),
    ("post", "security:rotate", [CLIENT], {}, (302, 403, 400, 400)),
    ("get", "security:revoke_secret", [CLIENT, SECRET], None, (302, 403, 200, 200)),
    ("get", "clients:disable", [CLIENT], None, (302, 403, 200, 200)),
    # Analytics: chart data and a client's activity block, readable by every role.
    ("get", "analytics:traffic_json", [], None, (302, 200, 200, 200)),
    ("post", "analytics:traffic_json", [], {}, (405, 405, 405, 405)),
    ("get", "analytics:client_activity", [CLIENT], None, (302, 200, 200, 200)),
    ("post", "analytics:client_activity", [CLIENT], {}, (405, 405, 405, 405)),
]
PERSONAS = ("anonymous", "viewer", "operator", "admin")


@pytest.mark.parametrize(
    ("method", "name", "args", "data", "expected"),
    CASES,
    ids=[f"{method}-{name}" for method, name, *_ in CASES],
)
class TestRoleMatrix:
    def test_it_answers_each_persona(
        self, persona_clients, make_client, method, name, args, data, expected
    ):
        if CLIENT in args:
            client, _secret = make_client("Matrix")
            ids = {CLIENT: client.client_id, SECRET: client.secrets.get().pk}
            args = [ids.get(arg, arg) for arg in args]
        url = reverse(name, args=args)
        answers = {}
        for persona in PERSONAS:
            browser = persona_clients[persona]
            response = getattr(browser, method)(url, data) if data is not None else browser.get(url)
            answers[persona] = response.status_code
            if response.status_code == 302 and persona == "anonymous":
                assert response["Location"].startswith(reverse("login"))
        assert answers == dict(zip(PERSONAS, expected, strict=True))
