"""The evaluation task through a real Celery worker on Redis: token events in, an alert and
a signed webhook delivery out.

The worker is a separate process, so it sees only committed rows (transactional test on
the pytest PostgreSQL database) and the real clock.
"""

from __future__ import annotations

import time
import uuid

import pytest
from django.utils import timezone

from alerts.models import Alert, AlertDelivery
from alerts.services import destination_create
from alerts.tasks import evaluate_detections
from analytics.models import TokenEvent
from audit.services import Actor
from clients import services
from keyward.celery import app as celery_app
from tests.analytics.conftest import partitions_for
from tests.processes import CeleryWorker, wait_for

from .conftest import event
from .test_notifications import Receiver, python_verifier

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(tmp_path, settings):
    if not settings.USE_REDIS or settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        pytest.skip("needs REDIS_URL and PostgreSQL")
    celery_app.conf.task_always_eager = False  # the alerts conftest makes it eager
    worker = CeleryWorker(tmp_path, purge=True)
    try:
        yield worker.log_path
    finally:
        worker.stop()


def test_the_worker_evaluates_and_delivers_a_signed_webhook(worker):
    receiver = Receiver(statuses=[503])  # the first try fails: the worker retries
    try:
        _destination, secret = destination_create(
            actor=Actor.cli(), name="hook", kind="webhook", target=receiver.url
        )
        client, _ = services.client_register(actor=Actor.cli(), name="Target")
        now = timezone.now()
        partitions_for(now)
        TokenEvent.objects.bulk_create(
            event(client_id=client.client_id, reason=TokenEvent.Reason.BAD_SECRET, at=now)
            for _ in range(25)
        )
        evaluate_detections.delay()
        alert = wait_for(
            lambda: Alert.objects.filter(rule="brute_force").first(), what="the alert", log=worker
        )
        assert alert.subject_client_id == client.client_id and alert.status == "open"
        wait_for(
            lambda: AlertDelivery.objects.filter(status="sent").exists(),
            what="the delivery to succeed on retry",
            log=worker,
        )
        assert len(receiver.requests) == 2 and AlertDelivery.objects.get().attempts == 2
        body, headers = receiver.requests[-1]
        assert python_verifier()(body, headers["Keyward-Signature"], secret)
    finally:
        receiver.close()


def test_a_drained_batch_is_evaluated_on_the_worker_within_seconds(worker, client):
    """Token requests → Redis buffer → the drain (analytics) → events_stored → the worker
    evaluates: the alert follows the last event by the drain's pace plus this, seconds."""
    from django.core.cache import cache

    from alerts.evaluation import _AFTER_DRAIN_CLAIM
    from alerts.services import detection_setting_update
    from analytics.drain import token_events_drain

    detection_setting_update(actor=Actor.cli(), rule="brute_force", environment="", threshold=5)
    target, _ = services.client_register(actor=Actor.cli(), name="Target")
    cache.delete(_AFTER_DRAIN_CLAIM)
    for _ in range(6):
        response = client.post(
            "/token-srv/token",
            "grant_type=client_credentials",
            content_type="application/x-www-form-urlencoded",
            HTTP_AUTHORIZATION=_basic(target.client_id, "not-the-secret"),
        )
        assert response.status_code == 401
    wait_for(lambda: token_events_drain() or TokenEvent.objects.count() >= 6, what="the drain")
    alert = wait_for(
        lambda: Alert.objects.filter(rule="brute_force").first(),
        timeout=20,
        what="the alert",
        log=worker,
    )
    last_event = TokenEvent.objects.order_by("-occurred_at").first()
    latency = (alert.created_at - last_event.occurred_at).total_seconds()
    print(f"event → alert latency after a drain: {latency:.2f} s")
    assert alert.subject_client_id == target.client_id and latency < 10


def test_a_batch_skipped_by_the_throttle_is_evaluated_seconds_later(worker):
    """An evaluation has just run (the claim is held): the attack's batch is not evaluated
    at once, but by one deferred run at the end of the interval, not by beat 30 s later."""
    from django.core.cache import cache

    from alerts.evaluation import _AFTER_DRAIN_CLAIM, _AFTER_DRAIN_DEFERRED_CLAIM
    from analytics.store import token_events_store
    from audit.events import TokenEventRecord

    target, _ = services.client_register(actor=Actor.cli(), name="Target")
    cache.delete(_AFTER_DRAIN_DEFERRED_CLAIM)
    cache.set(_AFTER_DRAIN_CLAIM, 1, timeout=5)  # as if a run had just started
    now = time.time()
    token_events_store(
        [
            TokenEventRecord(
                id=uuid.uuid4().hex,
                occurred_at=now - i,
                endpoint="token",
                client_id=target.client_id,
                client_known=True,
                outcome="failure",
                reason="bad_secret",
                source_ip="203.0.113.5",
                status_code=401,
            )
            for i in range(25)
        ]
    )
    stored = timezone.now()
    alert = wait_for(
        lambda: Alert.objects.filter(rule="brute_force").first(),
        timeout=15,
        what="the alert",
        log=worker,
    )
    delay = (alert.created_at - stored).total_seconds()
    print(f"throttled batch → alert: {delay:.2f} s")
    assert 3 < delay < 10


def _basic(client_id: str, secret: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
