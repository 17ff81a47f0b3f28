from __future__ import annotations

from django.urls import reverse

from clients.models import Client

URL = reverse("clients:list")


def names(response) -> list[str]:
    return [client.name for client in response.context["page"].object_list]


class TestClientList:
    def test_it_lists_clients_with_their_scopes(self, viewer_client, make_client, make_scope):
        client, _ = make_client("Billing", scopes=[make_scope("orders:read")])
        response = viewer_client.get(URL)
        assert response.status_code == 200
        assert client.client_id in response.text and "orders:read" in response.text

    def test_it_searches_name_client_id_owner_and_description(self, viewer_client, make_client):
        billing, _ = make_client("Billing", owner_email="pay@example.com", description="invoices")
        make_client("Shipping")
        for q in ("billi", billing.client_id[:10], "pay@example", "INVOICES"):
            assert names(viewer_client.get(URL, {"q": q})) == ["Billing"], q

    def test_it_filters_by_environment_status_and_scope(
        self, viewer_client, make_client, make_scope
    ):
        scope = make_scope("orders:read")
        make_client("Prod", environment="production", scopes=[scope])
        make_client("Dev", environment="development")
        off, _ = make_client("Off", environment="production")
        off.status = Client.Status.DISABLED
        off.save()
        assert names(viewer_client.get(URL, {"environment": "production"})) == ["Off", "Prod"]
        assert names(viewer_client.get(URL, {"status": "disabled"})) == ["Off"]
        assert names(viewer_client.get(URL, {"scope": "orders:read"})) == ["Prod"]

    def test_it_sorts_both_ways_and_ignores_unknown_sorts(self, viewer_client, make_client):
        make_client("B", environment="staging")
        make_client("A", environment="production")
        make_client("C", environment="development")
        assert names(viewer_client.get(URL, {"sort": "-name"})) == ["C", "B", "A"]
        assert names(viewer_client.get(URL, {"sort": "environment"})) == ["C", "A", "B"]
        assert names(viewer_client.get(URL, {"sort": "-created"})) == ["C", "A", "B"]
        response = viewer_client.get(URL, {"sort": "secret_hash"})
        assert response.status_code == 200 and names(response) == ["A", "B", "C"]

    def test_it_paginates_25_per_page_keeping_filters(self, viewer_client, make_client):
        for number in range(30):
            make_client(f"svc-{number:02d}", environment="staging")
        first = viewer_client.get(URL, {"environment": "staging"})
        assert len(names(first)) == 25 and "Page 1 of 2" in first.text
        assert "environment=staging&amp;page=2" in first.text
        second = viewer_client.get(URL, {"environment": "staging", "page": 2})
        assert names(second) == [f"svc-{number}" for number in range(25, 30)]
        assert viewer_client.get(URL, {"page": "999"}).status_code == 200


class TestClientListHtmx:
    def test_it_answers_htmx_with_just_the_results(self, viewer_client, make_client):
        make_client("Billing")
        response = viewer_client.get(URL, {"q": "bill"}, headers={"HX-Request": "true"})
        assert response.status_code == 200
        assert response.text.lstrip().startswith('<section id="client-results">')
        assert "<nav" not in response.text and "Billing" in response.text
        assert "HX-Request" in response["Vary"]

    def test_it_answers_a_history_restore_with_the_whole_page(self, viewer_client):
        headers = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
        response = viewer_client.get(URL, headers=headers)
        assert "<html" in response.text

    def test_the_search_form_pushes_the_url_and_links_have_hrefs(self, viewer_client, make_client):
        make_client("Billing")
        response = viewer_client.get(URL)
        assert 'hx-push-url="true"' in response.text
        assert 'href="?sort=-name"' in response.text


class TestClientListEmptyState:
    def test_it_invites_operators_to_register_the_first_client(self, operator_client):
        response = operator_client.get(URL)
        assert "No clients yet" in response.text and "Register your first client" in response.text

    def test_it_does_not_offer_viewers_a_register_button(self, viewer_client):
        response = viewer_client.get(URL)
        assert "No clients yet" in response.text
        assert "Register your first client" not in response.text
        assert reverse("clients:register") not in response.text

    def test_it_offers_to_clear_filters_when_nothing_matches(self, viewer_client, make_client):
        make_client("Billing")
        response = viewer_client.get(URL, {"q": "nothing-like-this"})
        assert "No clients match" in response.text and "Clear filters" in response.text
