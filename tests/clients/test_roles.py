"""Role matrix: every clients URL, for anonymous, viewer, operator and admin."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AdminAction
from clients import urls as clients_urls

PERSONAS = ("anonymous", "viewer", "operator", "admin")
CLIENT_ID = "client"  # placeholder, replaced by the fixture's client_id

REGISTER = {"name": "New", "environment": "staging", "access_token_lifetime": 60}
EDIT = {"name": "Renamed", "environment": "staging", "access_token_lifetime": 60}

# (url name, args, method, data, expected status for anonymous / viewer / operator / admin)
# Anonymous users are redirected (302) to the login page; successful writes redirect too.
# Each case logs in only its own persona: every user costs a slow password hash.
MATRIX = [
    ("list", [], "get", None, (302, 200, 200, 200)),
    ("register", [], "get", None, (302, 403, 200, 200)),
    ("register", [], "post", REGISTER, (302, 403, 302, 302)),
    ("detail", [CLIENT_ID], "get", None, (302, 200, 200, 200)),
    ("secret", [CLIENT_ID], "get", None, (302, 403, 200, 200)),
    ("edit", [CLIENT_ID], "get", None, (302, 403, 200, 200)),
    ("edit", [CLIENT_ID], "post", EDIT, (302, 403, 302, 302)),
    ("set_status", [CLIENT_ID], "post", {"status": "disabled"}, (302, 403, 302, 302)),
    ("disable", [CLIENT_ID], "get", None, (302, 403, 200, 200)),
    ("disable", [CLIENT_ID], "post", {}, (302, 403, 302, 302)),
    ("delete", [CLIENT_ID], "get", None, (302, 403, 403, 200)),
    ("delete", [CLIENT_ID], "post", {"confirm_name": "Billing"}, (302, 403, 403, 302)),
    ("scope_add", [CLIENT_ID], "post", {"scope": "spare:read"}, (302, 403, 302, 302)),
    ("scope_remove", [CLIENT_ID, "orders:read"], "post", {}, (302, 403, 302, 302)),
    ("scope_reason", [CLIENT_ID, "orders:read"], "post", {"reason": "r"}, (302, 403, 302, 302)),
    ("scope_list", [], "get", None, (302, 200, 200, 200)),
    ("scope_detail", ["orders:read"], "get", None, (302, 200, 200, 200)),
    ("scope_create", [], "get", None, (302, 403, 403, 200)),
    ("scope_create", [], "post", {"name": "fresh:read"}, (302, 403, 403, 302)),
    ("scope_edit", ["orders:read"], "get", None, (302, 403, 403, 200)),
    ("scope_edit", ["orders:read"], "post", {"description": "d"}, (302, 403, 403, 302)),
    ("scope_delete", ["spare:read"], "get", None, (302, 403, 403, 200)),
    ("scope_delete", ["spare:read"], "post", {}, (302, 403, 403, 302)),
]

POST_ONLY = [
    ("set_status", [CLIENT_ID]),
    ("scope_add", [CLIENT_ID]),
    ("scope_remove", [CLIENT_ID, "orders:read"]),
    ("scope_reason", [CLIENT_ID, "orders:read"]),
]

CASES = [
    pytest.param(
        name, args, method, data, persona, expected[index], id=f"{name}-{method}-{persona}"
    )
    for name, args, method, data, expected in MATRIX
    for index, persona in enumerate(PERSONAS)
]


@pytest.fixture
def billing(make_client, make_scope):
    make_scope("spare:read")
    client, _secret = make_client("Billing", scopes=[make_scope("orders:read")])
    return client


def resolve(name: str, args: list[str], client) -> str:
    return reverse(
        f"clients:{name}", args=[client.client_id if a == CLIENT_ID else a for a in args]
    )


class TestRoleMatrix:
    @pytest.mark.parametrize(("name", "args", "method", "data", "persona", "expected"), CASES)
    def test_it_answers_each_role_as_expected(
        self, request, billing, name, args, method, data, persona, expected
    ):
        url = resolve(name, args, billing)
        browser = request.getfixturevalue(f"{persona}_client")
        response = getattr(browser, method)(url, data) if data is not None else browser.get(url)
        assert response.status_code == expected
        if persona == "anonymous":
            assert response["Location"].startswith(f"{reverse('login')}?next=")

    @pytest.mark.parametrize("persona", PERSONAS)
    @pytest.mark.parametrize(("name", "args"), POST_ONLY)
    def test_it_refuses_get_on_post_only_urls(self, request, billing, name, args, persona):
        browser = request.getfixturevalue(f"{persona}_client")
        assert browser.get(resolve(name, args, billing)).status_code == 405

    def test_it_covers_every_clients_url(self):
        names = {pattern.name for pattern in clients_urls.urlpatterns}
        assert names == {row[0] for row in MATRIX}

    def test_it_records_forbidden_requests_in_the_audit_trail(self, viewer_client, viewer, billing):
        viewer_client.post(resolve("set_status", [CLIENT_ID], billing), {"status": "disabled"})
        row = AdminAction.objects.get(action="access.denied")
        assert row.actor == viewer and row.after["needed_role"] == "operator"
