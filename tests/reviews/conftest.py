"""Scope review fixtures: a stopped clock, token events written through the store, and
grants created in the past (by travelling there, so granted_at is set as in production)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from analytics.store import token_events_write
from audit.events import TokenEventRecord
from audit.services import Actor
from clients import services as client_services
from reviews import campaigns
from reviews.models import CampaignItem
from tests.conftest import make_user

START = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(START, tick=False)
    return time_machine


def request_event(client_id: str, *, requested: str = "", granted: str = "", source="keyward"):
    """A successful token request at the (travelled) present."""
    return TokenEventRecord(
        id=uuid.uuid4().hex,
        occurred_at=timezone.now().timestamp(),
        endpoint="token",
        client_id=client_id,
        client_known=True,
        outcome="success",
        reason="ok",
        source_ip="203.0.113.7",
        status_code=200,
        scopes_requested=requested,
        scopes_granted=granted,
        source=source,
    )


@pytest.fixture
def use():
    """use(client, "a b", source=…): the client got a token carrying those scopes now."""

    def record(client, scopes: str, *, source: str = "keyward", explicit: bool = True) -> None:
        token_events_write(
            [
                request_event(
                    client.client_id,
                    requested=scopes if explicit else "",
                    granted=scopes,
                    source=source,
                )
            ]
        )

    return record


def days(n: int) -> timedelta:
    return timedelta(days=n)


# Review campaigns --------------------------------------------------------------------


@pytest.fixture
def owner(db):
    """A console user whose email is Checkout's owner address in other letter case."""
    user = make_user("olivia-owner", "viewer")
    user.email = "Checkout-Owner@Example.com"
    user.save()
    return user


@pytest.fixture
def fallback(db):
    return make_user("fred-fallback", "operator")


@pytest.fixture
def world(clock, make_scope, make_client, admin_user, use, owner):
    """Granted 100 days ago: Checkout (production) holds orders:read (used), orders:write
    and payments:refund (sensitive); Stager (staging, owner not a console user) holds
    orders:read (unused)."""
    actor = Actor(label="admin", user=admin_user)
    read = make_scope("orders:read", owning_team="commerce")
    write = make_scope("orders:write", owning_team="commerce")
    refund = make_scope("payments:refund", owning_team="payments", sensitive=True)
    checkout, _ = make_client(
        "Checkout", environment="production", owner_email="checkout-owner@example.com"
    )
    stager, _ = make_client("Stager", environment="staging", owner_email="ops@elsewhere.example")
    for client, scope, reason in [
        (checkout, read, "reads orders"),
        (checkout, write, "TICKET-1"),
        (checkout, refund, "refunds on request"),
        (stager, read, "tests"),
    ]:
        client_services.scope_grant(actor=actor, client=client, scope=scope, reason=reason)
    clock.shift(days(100))
    use(checkout, "orders:read")
    return {"checkout": checkout, "stager": stager}


def start(fallback, *, selection="all", value="", policy="keep", recurrence="", deadline=None):
    """A campaign started from the command line (deadline in 14 days unless given)."""
    return campaigns.campaign_start(
        actor=Actor.cli(),
        name="Q1 access review",
        selection=selection,
        selection_value=value,
        deadline=deadline or timezone.now() + days(14),
        no_response_policy=policy,
        recurrence=recurrence,
        fallback_reviewer=fallback,
    )


def item(campaign, client_name: str, scope: str) -> CampaignItem:
    return campaign.items.get(client_name=client_name, scope=scope)
