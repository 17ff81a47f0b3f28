"""The findings scan through a real Celery worker on Redis (the beat entry's task)."""

from __future__ import annotations

import pytest

from reviews.models import Finding
from reviews.tasks import scan_review_findings
from tests.alerts.test_worker import wait_for, worker  # noqa: F401 - the worker fixture

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
