"""Emails: rendering, the send task, retries against a failing SMTP server, failure records."""

from __future__ import annotations

import socket
import threading

import pytest

from audit.services import Actor
from security import services
from security.models import NotificationLog
from security.notifications import notification_send, recipients_for
from security.tasks import send_notification

from .conftest import OWNER, SECURITY, days


class RefusingSmtpServer:
    """A fake SMTP server that answers every connection with 421 and hangs up."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.sendall(b"421 4.3.2 Service not available, try later\r\n")
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def refusing_smtp(settings):
    server = RefusingSmtpServer()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", server.port, 5
    yield server
    server.close()


@pytest.fixture
def queued(prod_client, clock, mailbox) -> NotificationLog:
    """A rotation email, queued but not sent (on_commit callbacks do not run here)."""
    client, _ = prod_client
    services.client_secret_rotate(actor=Actor.cli(), client=client, grace=days(1))
    return NotificationLog.objects.get()


class TestQueue:
    def test_it_renders_subject_text_and_html_when_queued(self, queued):
        assert queued.status == NotificationLog.Status.PENDING and queued.attempts == 0
        assert queued.subject == "[Keyward] Secret rotated for Billing (production)"
        assert "Switch every consumer" in queued.body_text
        assert queued.body_html.startswith("<!doctype html>")
        assert sorted(queued.recipients) == sorted([OWNER, SECURITY])

    def test_recipients_skip_blanks_and_duplicates(self, make_client, settings):
        settings.KEYWARD_SECURITY_EMAIL = OWNER
        client, _ = make_client(owner_email=OWNER)
        assert recipients_for(client) == [OWNER]
        client.owner_email = ""
        settings.KEYWARD_SECURITY_EMAIL = "  "
        assert recipients_for(client) == []


class TestSend:
    def test_it_sends_text_and_html_once(self, queued, mailbox):
        assert notification_send(queued.pk) is True
        assert notification_send(queued.pk) is False
        [message] = mailbox
        assert message.alternatives[0][1] == "text/html"
        queued.refresh_from_db()
        assert queued.status == "sent" and queued.sent_at is not None and queued.attempts == 1

    def test_the_task_retries_with_backoff_then_records_the_failure(self, queued, refusing_smtp):
        assert send_notification.retry_backoff is True and send_notification.max_retries == 5
        result = send_notification.apply(args=[queued.pk])
        assert result.failed()
        queued.refresh_from_db()
        assert refusing_smtp.connections == 6  # the first try and 5 retries
        assert queued.attempts == 6 and queued.status == NotificationLog.Status.FAILED
        assert "SMTPConnectError" in queued.last_error and "421" in queued.last_error

    def test_a_retry_that_succeeds_marks_it_sent(self, queued, refusing_smtp, settings, mailbox):
        with pytest.raises(Exception, match="421"):
            notification_send(queued.pk, final_attempt=False)
        queued.refresh_from_db()
        assert queued.status == NotificationLog.Status.PENDING and queued.attempts == 1
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        notification_send(queued.pk)
        queued.refresh_from_db()
        assert queued.status == "sent" and queued.last_error == "" and queued.attempts == 2

    def test_a_failed_notification_is_listed_for_admins(self, queued, refusing_smtp, admin_client):
        from .test_views import HEALTH

        send_notification.apply(args=[queued.pk])
        page = admin_client.get(HEALTH).content.decode()
        assert "Failed notifications" in page and "SMTPConnectError" in page
