"""The evaluation task through a real Celery worker on Redis: token events in, an alert and
a signed webhook delivery out.

The worker is a separate process, so it sees only committed rows (transactional test on
the pytest PostgreSQL database) and the real clock.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from alerts.models import Alert, AlertDelivery
from alerts.services import destination_create
from alerts.tasks import evaluate_detections
from analytics.models import TokenEvent
from audit.services import Actor
from clients import services
from keyward.celery import app as celery_app
from tests.analytics.conftest import partitions_for
from tests.processes import child_database_url

from .conftest import event
from .test_notifications import Receiver, python_verifier

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PROJECT_DIR = Path(django_settings.BASE_DIR)


def wait_for(condition, timeout: float = 40, what: str = "", log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    detail = log.read_text(errors="replace") if log else ""
    pytest.fail(f"timed out waiting for {what}\n{detail}")


@pytest.fixture
def worker(tmp_path, settings):
    if not settings.USE_REDIS or settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        pytest.skip("needs REDIS_URL and PostgreSQL")
    celery_app.conf.task_always_eager = False  # the alerts conftest makes it eager
    log_path = tmp_path / "worker.log"
    env = os.environ | {
        "DATABASE_URL": child_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "keyward.settings",
        "CELERY_TASK_ALWAYS_EAGER": "",
    }
    venv_celery = PROJECT_DIR / ".venv/bin/celery"
    celery = [str(venv_celery)] if venv_celery.exists() else [sys.executable, "-m", "celery"]
    command = [
        *celery,
        "-A",
        "keyward",
        "worker",
        "--pool=solo",
        "-c",
        "1",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
        "--purge",
        "-n",
        f"alerts-test-{uuid.uuid4().hex[:8]}@%h",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: " ready." in log_path.read_text(errors="replace") or process.poll() is not None,
            what="the worker to start",
            log=log_path,
        )
        assert process.poll() is None, log_path.read_text(errors="replace")
        yield log_path
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


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
