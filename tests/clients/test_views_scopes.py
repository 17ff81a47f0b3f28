from __future__ import annotations

from django.urls import reverse

from audit.models import AdminAction
from clients.models import Scope

LIST = reverse("clients:scope_list")
CREATE = reverse("clients:scope_create")


def url(name: str, scope_name: str) -> str:
    return reverse(f"clients:{name}", args=[scope_name])


class TestScopeList:
    def test_it_lists_scopes_with_holder_counts(self, viewer_client, make_scope, make_client):
        read, write = make_scope("orders:read"), make_scope("orders:write")
        make_client(scopes=[read, write])
        make_client(scopes=[read])
        response = viewer_client.get(LIST)
        counts = {scope.name: scope.holder_count for scope in response.context["scopes"]}
        assert counts == {"orders:read": 2, "orders:write": 1}

    def test_it_searches_name_description_and_team(self, viewer_client, make_scope):
        make_scope("orders:read", description="Read orders", owning_team="shop")
        make_scope("users:read", owning_team="identity")
        for q in ("orders", "READ ORDERS", "shop"):
            scopes = viewer_client.get(LIST, {"q": q}).context["scopes"]
            assert [scope.name for scope in scopes] == ["orders:read"], q

    def test_it_answers_htmx_with_the_results_only(self, viewer_client, make_scope):
        make_scope("orders:read")
        response = viewer_client.get(LIST, {"q": "nope"}, headers={"HX-Request": "true"})
        assert response.text.lstrip().startswith('<section id="scope-results">')
        assert "No scopes match" in response.text

    def test_it_offers_new_scope_to_admins_only(self, viewer_client, operator_client, admin_client):
        assert CREATE not in viewer_client.get(LIST).text
        assert CREATE not in operator_client.get(LIST).text
        assert CREATE in admin_client.get(LIST).text


class TestScopeDetail:
    def test_it_lists_holders_with_links(self, viewer_client, make_scope, make_client):
        scope = make_scope("orders:read", description="Read orders")
        client, _ = make_client("Shop", scopes=[scope])
        response = viewer_client.get(url("scope_detail", "orders:read"))
        assert response.status_code == 200 and "Read orders" in response.text
        assert reverse("clients:detail", args=[client.client_id]) in response.text

    def test_it_hides_admin_buttons_from_operators(self, operator_client, make_scope):
        make_scope("orders:read")
        text = operator_client.get(url("scope_detail", "orders:read")).text
        assert url("scope_edit", "orders:read") not in text
        assert url("scope_delete", "orders:read") not in text

    def test_it_answers_404_for_unknown_scopes(self, viewer_client):
        assert viewer_client.get(url("scope_detail", "no:such")).status_code == 404


class TestScopeCreate:
    def test_it_creates_and_redirects_to_the_scope(self, admin_client):
        data = {
            "name": "orders:read",
            "description": "Read",
            "owning_team": "shop",
            "sensitive": "on",
        }
        response = admin_client.post(CREATE, data)
        assert response.status_code == 302 and response["Location"] == url(
            "scope_detail", "orders:read"
        )
        scope = Scope.objects.get()
        assert scope.sensitive and scope.owning_team == "shop"

    def test_it_writes_the_audit_row(self, admin_client, admin_user):
        admin_client.post(CREATE, {"name": "orders:read"})
        row = AdminAction.objects.get(action="scope.create")
        assert row.actor == admin_user and row.target_id == "orders:read"

    def test_it_refuses_bad_and_duplicate_names(self, admin_client, make_scope):
        make_scope("orders:read")
        for name, error in [("Orders Read", "e.g. orders:read"), ("orders:read", "already exists")]:
            response = admin_client.post(CREATE, {"name": name})
            assert response.status_code == 200 and error in response.text
        assert Scope.objects.count() == 1

    def test_it_refuses_other_methods(self, admin_client):
        assert admin_client.put(CREATE).status_code == 405

    def test_it_refuses_operators(self, operator_client):
        assert operator_client.post(CREATE, {"name": "orders:read"}).status_code == 403
        assert not Scope.objects.exists()


class TestScopeEdit:
    def test_it_saves_but_does_not_offer_the_name(self, admin_client, make_scope):
        make_scope("orders:read")
        form = admin_client.get(url("scope_edit", "orders:read")).context["form"]
        assert "name" not in form.fields
        data = {"name": "renamed:x", "description": "New", "owning_team": "t"}
        response = admin_client.post(url("scope_edit", "orders:read"), data)
        assert response.status_code == 302
        scope = Scope.objects.get()
        assert scope.name == "orders:read" and scope.description == "New"

    def test_it_writes_the_audit_row(self, admin_client, admin_user, make_scope):
        make_scope("orders:read")
        admin_client.post(url("scope_edit", "orders:read"), {"sensitive": "on"})
        row = AdminAction.objects.get(action="scope.update")
        assert row.actor == admin_user and row.after == {"sensitive": True}

    def test_it_rerenders_errors(self, admin_client, make_scope):
        make_scope("orders:read")
        response = admin_client.post(url("scope_edit", "orders:read"), {"description": "x" * 301})
        assert response.status_code == 200 and response.context["form"].errors

    def test_it_refuses_other_methods(self, admin_client, make_scope):
        make_scope("orders:read")
        assert admin_client.put(url("scope_edit", "orders:read")).status_code == 405

    def test_it_refuses_operators(self, operator_client, make_scope):
        make_scope("orders:read")
        response = operator_client.post(url("scope_edit", "orders:read"), {"description": "x"})
        assert response.status_code == 403


class TestScopeDelete:
    def test_it_deletes_an_unused_scope(self, admin_client, make_scope):
        make_scope("orders:read")
        response = admin_client.post(url("scope_delete", "orders:read"))
        assert response.status_code == 302 and response["Location"] == LIST
        assert not Scope.objects.exists()

    def test_it_writes_the_audit_row(self, admin_client, admin_user, make_scope):
        make_scope("orders:read")
        admin_client.post(url("scope_delete", "orders:read"))
        row = AdminAction.objects.get(action="scope.delete")
        assert row.actor == admin_user and row.target_id == "orders:read"

    def test_it_refuses_while_granted_naming_the_holders(
        self, admin_client, make_scope, make_client
    ):
        scope = make_scope("orders:read")
        shop, _ = make_client("Shop", scopes=[scope])
        make_client("Warehouse", scopes=[scope])
        response = admin_client.post(url("scope_delete", "orders:read"))
        assert response.status_code == 409
        assert "was not deleted" in response.text
        assert "Shop</a>, <a" in response.text and "Warehouse" in response.text
        assert reverse("clients:detail", args=[shop.client_id]) in response.text
        assert Scope.objects.exists() and not AdminAction.objects.filter(action="scope.delete")

    def test_it_asks_first_even_for_an_unused_scope(self, admin_client, make_scope):
        make_scope("orders:read")
        response = admin_client.get(url("scope_delete", "orders:read"))
        assert response.status_code == 200
        assert "Delete the scope <code>orders:read</code>?" in response.text
        assert 'class="destructive"' in response.text
        assert Scope.objects.exists()

    def test_the_scope_page_links_to_the_question_not_a_delete_form(self, admin_client, make_scope):
        make_scope("orders:read")
        text = admin_client.get(url("scope_detail", "orders:read")).text
        assert f'href="{url("scope_delete", "orders:read")}"' in text
        assert f'action="{url("scope_delete", "orders:read")}"' not in text

    def test_it_refuses_operators(self, operator_client, make_scope):
        make_scope("orders:read")
        assert operator_client.post(url("scope_delete", "orders:read")).status_code == 403
        assert Scope.objects.exists()
