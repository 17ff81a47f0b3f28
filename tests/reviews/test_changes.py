"""Least privilege: recommendation → apply → rollback restores exactly the former grants."""

from __future__ import annotations

import pytest
from django.core import mail

from audit.models import AdminAction
from audit.services import Actor
from clients import services as client_services
from clients.models import ScopeGrant
from reviews import services
from reviews.recommendations import recommendation_for

from .conftest import days

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def idle_client(clock, make_scope, make_client, admin_user, use):
    """Granted three scopes 100 days ago; uses only orders:read."""
    read, write, refund = make_scope("orders:read"), make_scope("orders:write"), make_scope("x:y")
    client, _ = make_client("Checkout", owner_email="owner@example.com")
    actor = Actor(label="admin", user=admin_user)
    client_services.scope_grant(actor=actor, client=client, scope=read, reason="reads orders")
    client_services.scope_grant(actor=actor, client=client, scope=write, reason="TICKET-1")
    client_services.scope_grant(actor=actor, client=client, scope=refund)
    clock.shift(days(100))
    use(client, "orders:read")
    return client


def grants_of(client) -> list[tuple]:
    return sorted(
        ScopeGrant.objects.filter(client=client).values_list(
            "scope__name", "reason", "granted_at", "granted_by_id"
        )
    )


class TestRecommendation:
    def test_it_proposes_removing_the_unused_scopes(self, idle_client):
        recommendation = recommendation_for(idle_client)
        assert [u.grant.scope.name for u in recommendation.remove] == ["orders:write", "x:y"]
        assert recommendation.proposed_scopes() == ["orders:read"]

    def test_it_keeps_grants_too_young_to_judge(self, clock, make_scope, make_client):
        client, _ = make_client(scopes=[make_scope("orders:read")])
        clock.shift(days(10))
        assert recommendation_for(client).is_empty()


class TestApplyAndRollback:
    def test_the_round_trip_restores_exactly_the_former_grants(self, idle_client, clock):
        before = grants_of(idle_client)
        change = services.recommendation_apply(actor=Actor.cli(), client=idle_client)
        assert [g[0] for g in grants_of(idle_client)] == ["orders:read"]
        assert change.scope_names() == ["orders:write", "x:y"]
        clock.shift(days(29))
        services.change_rollback(actor=Actor.cli(), change=change)
        assert grants_of(idle_client) == before
        change.refresh_from_db()
        assert change.rolled_back_at is not None

    def test_it_audits_and_mails_the_owner_both_ways(
        self, idle_client, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            change = services.recommendation_apply(actor=Actor.cli(), client=idle_client)
        with django_capture_on_commit_callbacks(execute=True):
            services.change_rollback(actor=Actor.cli(), change=change)
        actions = list(
            AdminAction.objects.filter(target_id=idle_client.client_id).values_list(
                "action", flat=True
            )
        )
        for action in ("review.apply", "scope.revoke", "review.rollback", "scope.grant_restore"):
            assert action in actions
        assert [m.to for m in mail.outbox] == [["owner@example.com"], ["owner@example.com"]]
        assert "applied" in mail.outbox[0].subject and "rolled back" in mail.outbox[1].subject
        assert "orders:write" in mail.outbox[0].body

    def test_it_refuses_a_rollback_after_30_days(self, idle_client, clock):
        change = services.recommendation_apply(actor=Actor.cli(), client=idle_client)
        clock.shift(days(31))
        with pytest.raises(services.RollbackRefused):
            services.change_rollback(actor=Actor.cli(), change=change)

    def test_it_refuses_a_second_rollback(self, idle_client):
        change = services.recommendation_apply(actor=Actor.cli(), client=idle_client)
        services.change_rollback(actor=Actor.cli(), change=change)
        with pytest.raises(services.RollbackRefused):
            services.change_rollback(actor=Actor.cli(), change=change)

    def test_it_refuses_to_apply_an_empty_recommendation(self, clock, make_client):
        client, _ = make_client()
        with pytest.raises(services.NothingToApply):
            services.recommendation_apply(actor=Actor.cli(), client=client)
