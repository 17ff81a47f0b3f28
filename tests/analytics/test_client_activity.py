"""A client's activity block (analytics:client_activity), loaded into the client page by
htmx: traffic, source networks, scopes requested against granted, secrets by hint, and
requests from other token services that name the same client_id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from tests.analytics.traffic import event, events_write

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def billing(make_client, make_scope):
    """A client granted orders:read and orders:write, that used orders:read and tried
    refunds:write, from two networks and through Keyward and Okta."""
    read, write = make_scope("orders:read"), make_scope("orders:write")
    client, _secret = make_client("Billing", scopes=[read, write])
    cid = client.client_id
    secret = client.secrets.get()
    events_write(
        event(
            NOW - timedelta(hours=3),
            client_id=cid,
            client_known=True,
            secret_id=secret.pk,
            scopes_requested="orders:read",
            scopes_granted="orders:read",
            ip="203.0.113.7",
        ),
        event(
            NOW - timedelta(hours=2),
            client_id=cid,
            client_known=True,
            reason="invalid_scope",
            scopes_requested="refunds:write",
            ip="203.0.113.99",
        ),
        event(NOW - timedelta(hours=1), client_id=cid, source="okta", ip="2001:db8:7:1::5"),
        event(NOW - timedelta(hours=1), client_id="someone-else", ip="192.0.2.1"),
    )
    return client


def activity(browser, client, **params):
    url = reverse("analytics:client_activity", args=[client.client_id])
    return browser.get(url, params, HTTP_HX_REQUEST="true")


class TestClientActivity:
    def test_it_lists_source_networks_with_first_and_last_seen(self, viewer_client, billing):
        response = activity(viewer_client, billing)
        networks = {(n.network, n.source): n for n in response.context["activity"].networks}
        assert set(networks) == {("203.0.113.0/24", "keyward"), ("2001:db8:7::/48", "okta")}
        ours = networks[("203.0.113.0/24", "keyward")]
        assert (ours.count, ours.failures) == (2, 1)
        assert ours.first_seen == NOW - timedelta(hours=3)
        assert ours.last_seen == NOW - timedelta(hours=2)
        html = response.content.decode()
        assert "203.0.113.0/24" in html and "2001:db8:7::/48" in html
        assert "ip=203.0.113.0%2F24" in html

    def test_it_compares_scopes_requested_with_scopes_granted(self, viewer_client, billing):
        scopes = activity(viewer_client, billing).context["activity"]
        rows = {row.scope: (row.granted, row.requested, row.issued) for row in scopes.scopes}
        assert rows == {
            "orders:read": (True, 1, 1),
            "orders:write": (True, 0, 0),
            "refunds:write": (False, 1, 0),
        }
        assert [row.scope for row in scopes.never_requested] == ["orders:write"]
        assert [row.scope for row in scopes.not_granted] == ["refunds:write"]

    def test_it_names_the_secret_used_by_its_hint(self, viewer_client, billing):
        secret = billing.secrets.get()
        response = activity(viewer_client, billing)
        [row] = response.context["activity"].secrets
        assert row.hint == secret.hint and row.hint.startswith("kwsec_…")
        assert row.last_used_at == NOW - timedelta(hours=3)
        assert row.last_used_ip == "203.0.113.7"
        assert secret.hint in response.content.decode()

    def test_it_shows_other_sources_with_the_same_client_id(self, viewer_client, billing):
        response = activity(viewer_client, billing)
        sources = {s.source: (s.requests, s.failures) for s in response.context["activity"].sources}
        assert sources == {"keyward": (2, 1), "okta": (1, 0)}
        assert response.context["activity"].series.requests == 3
        assert 'badge-source">okta' in response.content.decode()

    def test_it_links_its_chart_to_the_json_of_this_client(self, viewer_client, billing):
        html = activity(viewer_client, billing, range="24h").content.decode()
        assert f"/analytics/charts/traffic.json?range=24h&amp;client_id={billing.client_id}" in html
        assert "outcome=failure" in html and "&amp;source=keyward" in html

    def test_it_answers_htmx_with_the_block_and_a_browser_with_a_page(self, viewer_client, billing):
        fragment = activity(viewer_client, billing).content.decode()
        assert fragment.lstrip().startswith('<section id="client-activity"')
        url = reverse("analytics:client_activity", args=[billing.client_id])
        page = viewer_client.get(url).content.decode()
        assert "<html" in page and 'id="client-activity"' in page

    def test_it_says_so_when_the_client_has_no_traffic(self, viewer_client, make_client):
        quiet, _ = make_client("Quiet")
        html = activity(viewer_client, quiet).content.decode()
        assert "No requests with this client_id last 7 days" in html
        assert "No requests with a source address yet." in html

    def test_it_refuses_an_unknown_range_and_an_unknown_client(self, viewer_client, billing):
        assert activity(viewer_client, billing, range="1y").status_code == 400
        url = reverse("analytics:client_activity", args=["no-such-client"])
        assert viewer_client.get(url).status_code == 404

    def test_it_needs_a_signed_in_user_with_a_role(self, anonymous_client, billing):
        response = activity(anonymous_client, billing)
        assert response.status_code == 204
        assert response["HX-Redirect"].startswith(reverse("login"))


class TestClientPage:
    def test_it_loads_the_activity_block_from_analytics(self, viewer_client, billing):
        html = viewer_client.get(reverse("clients:detail", args=[billing.client_id])).content
        url = reverse("analytics:client_activity", args=[billing.client_id])
        assert f'hx-get="{url}" hx-trigger="load"'.encode() in html
        assert f'<a href="{url}">'.encode() in html
        assert b"uPlot.iife.min.js" in html and b"charts.js" in html
