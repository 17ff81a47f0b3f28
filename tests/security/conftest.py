"""Secret-lifecycle fixtures: eager Celery, a mailbox, clock helpers, aged secrets, events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from analytics.models import TokenEvent
from clients.models import Client, ClientSecret
from keyward.celery import app as celery_app
from tests.analytics.conftest import partitions_for

SECURITY = "security@example.com"
OWNER = "owner@example.com"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _eager_celery():
    """Tasks queued on commit run in-process: unit tests never touch the real broker."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


@pytest.fixture
def mailbox(settings):
    """Django's locmem outbox, with a security mailbox configured."""
    from django.core import mail

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.KEYWARD_SECURITY_EMAIL = SECURITY
    mail.outbox = []
    return mail.outbox


@pytest.fixture
def clock(time_machine):
    """A stopped clock at T0; `clock.move_to(dt)` / `clock.shift(delta)` travel."""
    time_machine.move_to(T0, tick=False)
    return time_machine


@pytest.fixture
def prod_client(make_client, clock):
    """(client, plain secret) in production, owned by OWNER, created at T0."""
    return make_client("Billing", environment=Client.Environment.PRODUCTION, owner_email=OWNER)


def record_event(
    secret: ClientSecret | None,
    *,
    at: datetime | None = None,
    ip: str = "10.1.2.3",
    outcome: str = TokenEvent.Outcome.SUCCESS,
    client: Client | None = None,
) -> TokenEvent:
    """A token event as ingestion writes it, plus the last-used fields ingestion keeps."""
    at = at or timezone.now()
    client = client or secret.client
    # Straight through the ORM, not the store: tests place events ahead of their stopped
    # clock, which the store would refuse as "in the future".
    partitions_for(at)
    event = TokenEvent.objects.create(
        id=uuid.uuid4(),
        occurred_at=at,
        endpoint=TokenEvent.Endpoint.TOKEN,
        client_id=client.client_id,
        client_known=True,
        secret_id=secret.pk if secret else None,
        outcome=outcome,
        reason=TokenEvent.Reason.OK
        if outcome == TokenEvent.Outcome.SUCCESS
        else TokenEvent.Reason.BAD_SECRET,
        source_ip=ip,
        status_code=200 if outcome == TokenEvent.Outcome.SUCCESS else 401,
    )
    if outcome == TokenEvent.Outcome.SUCCESS and secret is not None:
        ClientSecret.objects.filter(pk=secret.pk).update(last_used_at=at, last_used_ip=ip)
        Client.objects.filter(pk=client.pk).update(last_used_at=at)
    return event


def days(n: float) -> timedelta:
    return timedelta(days=n)
