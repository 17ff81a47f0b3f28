"""The scan task and the mail task through a real Celery worker on Redis.

The worker is a separate process, so it sees only committed rows (transactional test on
the pytest PostgreSQL database) and mails through the file backend into a temp dir.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.services import Actor
from clients import services
from clients.models import Client, ClientSecret
from keyward.celery import app as celery_app
from security.models import NotificationLog, SecretFinding
from security.tasks import scan_stale_secrets
from tests.processes import CeleryWorker, wait_for

from .conftest import OWNER, SECURITY

# No serialized_rollback: restoring the snapshot fails with duplicate content types when an
# earlier transactional test without it (and its post_migrate) ran first. This test needs
# no migration-seeded rows: the secret policy falls back to the built-in defaults.
pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(tmp_path, settings):
    if not settings.USE_REDIS or settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        pytest.skip("needs REDIS_URL and PostgreSQL")
    celery_app.conf.task_always_eager = False  # conftest makes it eager for unit tests
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    worker = CeleryWorker(
        tmp_path,
        purge=True,
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(mail_dir),
        KEYWARD_SECURITY_EMAIL=SECURITY,
    )
    try:
        yield mail_dir, worker.log_path
    finally:
        worker.stop()


def test_the_worker_scans_and_mails_each_finding_once(worker):
    mail_dir, log_path = worker
    client, _ = services.client_register(
        actor=Actor.cli(), name="Stale", environment="production", owner_email=OWNER
    )
    long_ago = timezone.now() - timedelta(days=40)
    Client.objects.filter(pk=client.pk).update(created_at=long_ago)
    ClientSecret.objects.filter(client=client).update(created_at=long_ago)

    scan_stale_secrets.delay()
    wait_for(
        lambda: NotificationLog.objects.filter(status="sent").count() == 2,
        what="two digests sent",
        log=log_path,
    )
    kinds = set(SecretFinding.objects.filter(state="open").values_list("kind", flat=True))
    assert kinds == {"secret_unused", "client_dormant"}
    mails = wait_for(lambda: [p.read_text() for p in mail_dir.iterdir()] or None, what="mail files")
    text = "\n".join(mails)
    assert f"To: {OWNER}" in text and f"To: {SECURITY}" in text
    assert "2 new secret findings for Stale" in text

    # A second scan through the worker sees the same findings and mails nothing more.
    first_seen = SecretFinding.objects.order_by("last_seen_at").first().last_seen_at
    scan_stale_secrets.delay()
    wait_for(
        lambda: not SecretFinding.objects.filter(last_seen_at__lte=first_seen).exists(),
        what="the second scan to finish",
        log=log_path,
    )
    time.sleep(1)  # anything it queued would have been picked up by now
    assert NotificationLog.objects.count() == 2 and SecretFinding.objects.count() == 2
    assert len(list(mail_dir.iterdir())) == len(mails)
