"""Scope review pages: role checks on every view, fragments for htmx, archive, apply and
rollback through the browser-facing views."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AdminAction
from clients.models import ScopeGrant
from reviews.models import Finding, GrantChange
from reviews.scan import findings_scan

from .conftest import days

pytestmark = pytest.mark.django_db


@pytest.fixture
def idle(clock, make_scope, make_client):
    client, _ = make_client("Idle", scopes=[make_scope("orders:read")])
    clock.shift(days(91))
    findings_scan()
    return client


def read_urls(client) -> list[str]:
    return [
        reverse("reviews:matrix"),
        reverse("reviews:findings"),
        reverse("reviews:client_usage", args=[client.client_id]),
        reverse("reviews:scope_usage", args=["orders:read"]),
        reverse("reviews:recommendation", args=[client.client_id]),
    ]


class TestRoles:
    def test_anonymous_users_go_to_the_login_page(self, idle, anonymous_client):
        for url in read_urls(idle):
            response = anonymous_client.get(url)
            assert response.status_code == 302 and "/login/" in response["Location"]

    def test_viewers_read_every_page(self, idle, viewer_client):
        for url in read_urls(idle):
            assert viewer_client.get(url).status_code == 200, url

    def test_viewers_cannot_archive(self, idle, viewer_client):
        finding = Finding.objects.get(kind="unused_grant")
        url = reverse("reviews:finding_archive", args=[finding.pk])
        assert viewer_client.post(url, {"reason": "x"}).status_code == 403

    def test_operators_cannot_apply_or_roll_back(self, idle, operator_client, admin_client):
        apply_url = reverse("reviews:apply", args=[idle.client_id])
        assert operator_client.get(apply_url).status_code == 403
        assert operator_client.post(apply_url).status_code == 403
        admin_client.post(apply_url)
        change = GrantChange.objects.get()
        response = operator_client.post(reverse("reviews:rollback", args=[change.pk]))
        assert response.status_code == 403

    def test_mutating_views_refuse_get(self, idle, admin_client):
        finding = Finding.objects.get(kind="unused_grant")
        assert (
            admin_client.get(reverse("reviews:finding_archive", args=[finding.pk])).status_code
            == 405
        )


class TestUsageFragments:
    def test_the_client_page_loads_the_fragment_with_a_fallback_link(self, idle, viewer_client):
        page = viewer_client.get(reverse("clients:detail", args=[idle.client_id])).content.decode()
        url = reverse("reviews:client_usage", args=[idle.client_id])
        assert f'hx-get="{url}"' in page and f'href="{url}"' in page

    def test_the_scope_page_loads_the_fragment(self, idle, viewer_client):
        page = viewer_client.get(reverse("clients:scope_detail", args=["orders:read"]))
        assert reverse("reviews:scope_usage", args=["orders:read"]) in page.content.decode()

    def test_htmx_gets_only_the_fragment(self, idle, viewer_client):
        url = reverse("reviews:client_usage", args=[idle.client_id])
        fragment = viewer_client.get(url, headers={"HX-Request": "true"}).content.decode()
        assert fragment.lstrip().startswith('<div id="client-usage">')
        assert "never used" in fragment

    def test_the_matrix_labels_recency_in_words(self, idle, viewer_client):
        page = viewer_client.get(reverse("reviews:matrix"), {"environment": "development"})
        assert "recency-never" in page.content.decode() and "never used" in page.content.decode()


class TestArchiveView:
    def test_an_operator_archives_with_a_reason(self, idle, operator_client, operator):
        finding = Finding.objects.get(kind="unused_grant")
        url = reverse("reviews:finding_archive", args=[finding.pk])
        operator_client.post(url, {"reason": "used by the yearly audit job"})
        finding.refresh_from_db()
        assert finding.status == "archived" and finding.archived_by == operator
        assert AdminAction.objects.filter(action="review.finding_archive", actor=operator).exists()

    def test_it_refuses_an_empty_reason(self, idle, operator_client):
        finding = Finding.objects.get(kind="unused_grant")
        url = reverse("reviews:finding_archive", args=[finding.pk])
        operator_client.post(url, {"reason": ""})
        finding.refresh_from_db()
        assert finding.status == "open"

    def test_the_findings_page_explains_in_plain_words(self, idle, viewer_client):
        page = viewer_client.get(reverse("reviews:findings")).content.decode()
        assert "has not requested or been issued" in page


class TestApplyAndRollbackViews:
    def test_an_admin_confirms_applies_and_rolls_back(self, idle, admin_client, admin_user):
        apply_url = reverse("reviews:apply", args=[idle.client_id])
        assert "Remove 1 scope" in admin_client.get(apply_url).content.decode()
        response = admin_client.post(apply_url)
        change = GrantChange.objects.get()
        assert response["Location"] == reverse("reviews:change", args=[change.pk])
        assert not ScopeGrant.objects.filter(client=idle).exists()
        admin_client.post(reverse("reviews:rollback", args=[change.pk]))
        assert ScopeGrant.objects.filter(client=idle).count() == 1
        assert AdminAction.objects.filter(action="review.rollback", actor=admin_user).exists()


class TestExport:
    def test_it_exports_who_holds_what_with_usage(self, idle, viewer_client, use):
        use(idle, "orders:read", source="keycloak")
        response = viewer_client.get(reverse("reviews:export"), {"scope": "orders:read"})
        assert response["Content-Type"].startswith("text/csv")
        lines = b"".join(response.streaming_content).decode().splitlines()
        assert lines[0].startswith("client_id,client,environment")
        assert lines[1].startswith(f"{idle.client_id},Idle,development,active,orders:read")
        assert lines[1].endswith(",1,1,1,1,this week,not reported,0")

    def test_anonymous_users_cannot_export(self, idle, anonymous_client):
        assert anonymous_client.get(reverse("reviews:export")).status_code == 302
