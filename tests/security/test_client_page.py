"""The Secrets section of the client page: rotation progress, Rotate and Revoke by role,
the Security link in the nav and the open-finding counts on the overview."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from audit.services import Actor
from security import services
from security.models import SecretFinding
from security.scan import secrets_scan

from .conftest import T0, days, record_event

HTMX = {"HX-Request": "true"}


def detail_url(client) -> str:
    return reverse("clients:detail", args=[client.client_id])


def rotate_url(client) -> str:
    return reverse("security:rotate", args=[client.client_id])


def revoke_url(client, secret) -> str:
    return reverse("security:revoke_secret", args=[client.client_id, secret.pk])


@pytest.fixture
def rotated(prod_client, clock):
    """(client, old secret, new secret): rotated a day after T0 with a 7-day grace."""
    client, _ = prod_client
    old = client.secrets.get()
    clock.shift(days(1))
    new, _plain = services.client_secret_rotate(actor=Actor.cli(), client=client, grace=days(7))
    return client, old, new


class TestRotationProgress:
    def test_it_says_the_old_secret_is_in_use_with_time_ip_and_count(
        self, rotated, clock, viewer_client
    ):
        client, old, _new = rotated
        record_event(old, at=T0 + days(1) + timedelta(minutes=5), ip="10.1.2.3")
        record_event(old, at=T0 + days(1) + timedelta(minutes=7), ip="10.1.2.3")
        clock.shift(timedelta(minutes=10))
        response = viewer_client.get(detail_url(client))
        assert "in use — last used 3\xa0minutes ago from 10.1.2.3" in response.text
        rows = {row.secret.pk: row for row in response.context["secret_rows"]}
        assert rows[old.pk].uses_since_rotation == 2
        assert f'<tr id="secret-{old.pk}">' in response.text

    def test_it_says_an_unused_old_secret_is_safe_to_revoke(
        self, rotated, clock, viewer, viewer_client
    ):
        client, _old, new = rotated
        record_event(new, at=T0 + days(1) + timedelta(minutes=1), ip="10.9.9.9")
        clock.shift(timedelta(hours=1))
        viewer_client.force_login(viewer)  # the session idled out over the hour
        text = viewer_client.get(detail_url(client)).text
        assert "unused since rotation — safe to revoke" in text
        assert "current secret — last used 59\xa0minutes ago from 10.9.9.9" in text

    def test_it_lists_the_newest_secret_first_with_its_dates(self, rotated, viewer_client):
        client, old, new = rotated
        response = viewer_client.get(detail_url(client))
        assert [row.secret for row in response.context["secret_rows"]] == [new, old]
        old.refresh_from_db()  # the rotation gave it the grace expiry
        assert old.expires_at == T0 + days(8)
        assert f"{old.expires_at:%Y-%m-%d %H:%M}" in response.text
        assert response.text.index(new.hint) < response.text.index(old.hint)

    def test_it_marks_revoked_secrets_with_their_time(self, rotated, clock, viewer, viewer_client):
        client, old, _new = rotated
        services.client_secret_revoke(actor=Actor.cli(), secret=old)
        clock.shift(days(2))
        viewer_client.force_login(viewer)  # the session idled out over the two days
        text = viewer_client.get(detail_url(client)).text
        assert "badge-revoked" in text and "revoked 2\xa0days ago" in text


class TestSecretButtons:
    def test_viewers_get_neither_rotate_nor_revoke(self, rotated, viewer_client):
        client, old, new = rotated
        text = viewer_client.get(detail_url(client)).text
        assert rotate_url(client) not in text and "Rotate secret" not in text
        assert revoke_url(client, old) not in text and revoke_url(client, new) not in text
        assert "rotate-dialog-modal" not in text

    @pytest.mark.parametrize("persona", ["operator_client", "admin_client"])
    def test_operators_and_admins_get_rotate_and_revoke(self, rotated, persona, request):
        client, old, new = rotated
        text = request.getfixturevalue(persona).get(detail_url(client)).text
        back = f"?next={detail_url(client)}"
        # The Rotate button loads the dialog with htmx and still works as a plain link.
        assert f'href="{rotate_url(client)}{back}"' in text
        assert f'hx-get="{rotate_url(client)}{back}"' in text
        assert '<dialog id="rotate-dialog-modal"></dialog>' in text
        assert f'href="{revoke_url(client, old)}{back}"' in text
        assert f'href="{revoke_url(client, new)}{back}"' in text

    def test_revoked_and_expired_secrets_get_no_revoke_link(self, rotated, clock, operator_client):
        client, old, new = rotated
        services.client_secret_revoke(actor=Actor.cli(), secret=old)
        expiring, _ = services.client_secret_rotate(
            actor=Actor.cli(), client=client, grace=timedelta(0)
        )
        text = operator_client.get(detail_url(client)).text
        assert revoke_url(client, old) not in text  # revoked
        assert revoke_url(client, new) not in text  # expired by the grace-0 rotation
        assert revoke_url(client, expiring) in text

    def test_the_rotate_link_answers_htmx_with_the_dialog_form(self, rotated, operator_client):
        client, _old, _new = rotated
        response = operator_client.get(rotate_url(client), headers=HTMX)
        assert response.status_code == 200
        assert response.text.lstrip().startswith('<article id="rotate-dialog"')
        assert "data-dialog-close" in response.text and "24 hours" in response.text

    def test_revoking_from_the_client_page_returns_to_it(self, rotated, operator_client):
        client, old, _new = rotated
        response = operator_client.post(revoke_url(client, old), {"next": detail_url(client)})
        assert response.status_code == 302 and response["Location"] == detail_url(client)
        old.refresh_from_db()
        assert old.is_revoked()


class TestSecurityNavAndOverview:
    @pytest.mark.parametrize("persona", ["viewer_client", "operator_client", "admin_client"])
    def test_every_role_gets_the_security_link(self, persona, request):
        text = request.getfixturevalue(persona).get(reverse("dashboard:overview")).text
        assert f'<a href="{reverse("security:health")}">Security</a>' in text

    def test_the_health_page_leads_to_the_settings(self, viewer_client):
        text = viewer_client.get(reverse("security:health")).text
        assert f'href="{reverse("security:settings")}"' in text

    def test_the_overview_counts_open_findings_by_kind_with_links(
        self, prod_client, clock, viewer_client
    ):
        clock.shift(days(31))  # never used in 30 days: unused secret and dormant client
        secrets_scan()
        clock.move_to(T0)  # back to when the viewer logged in, before the session expires
        response = viewer_client.get(reverse("dashboard:overview"))
        counts = {row["kind"]: row["count"] for row in response.context["findings"]}
        assert counts == {
            SecretFinding.Kind.SECRET_TOO_OLD: 0,
            SecretFinding.Kind.SECRET_EXPIRING: 0,
            SecretFinding.Kind.SECRET_UNUSED: 1,
            SecretFinding.Kind.CLIENT_DORMANT: 1,
        }
        for kind in SecretFinding.Kind.values:
            assert f'href="{reverse("security:health")}?kind={kind}"' in response.text
