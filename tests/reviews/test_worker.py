"""The findings scan through a real Celery worker on Redis (the beat entry's task)."""

from __future__ import annotations

import pytest

from audit.services import Actor
from reviews.models import Finding
from reviews.tasks import scan_review_findings
from tests.alerts.test_worker import worker  # noqa: F401 - the worker fixture
from tests.processes import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_the_worker_opens_findings(worker, make_client):  # noqa: F811
    client, _ = make_client("No owner")
    scan_review_findings.delay()
    found = wait_for(
        lambda: Finding.objects.filter(kind="client_no_owner", client_id=client.client_id).first(),
        what="the scan to open a finding",
        log=worker,
    )
    assert found.status == "open"


def test_the_worker_closes_a_campaign_past_its_deadline(worker, make_client, make_scope):  # noqa: F811
    from datetime import timedelta

    from django.utils import timezone

    from reviews.campaigns import campaign_start
    from reviews.models import ReviewCampaign
    from reviews.tasks import run_review_campaigns
    from tests.conftest import make_user

    make_client("Billing", scopes=[make_scope("orders:read")])
    campaign = campaign_start(
        actor=Actor.cli(),
        name="Due now",
        selection="all",
        deadline=timezone.now() + timedelta(days=1),
        no_response_policy="keep",
        fallback_reviewer=make_user("fred-fallback", "operator"),
    )
    ReviewCampaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now())
    run_review_campaigns.delay()
    closed = wait_for(
        lambda: ReviewCampaign.objects.filter(pk=campaign.pk, status="closed").first(),
        what="the run to close the campaign",
        log=worker,
    )
    assert closed.items.get().decided_by_label == "policy"
