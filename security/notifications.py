"""Emails about secrets: queued in the caller's transaction, sent by a Celery task.

A NotificationLog row is written together with the change it reports, and the send task
is enqueued only after commit, so a rolled-back change never mails anybody and a crash
between commit and send leaves a visible pending row instead of a lost email.
"""

from __future__ import annotations

import logging
from smtplib import SMTPException

from celery import signature
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from clients.models import Client

from .models import NotificationLog

log = logging.getLogger("keyward.notifications")

EMAILS = "security/emails"

# Errors worth another try: the mail server or the network, not our message.
RETRYABLE_ERRORS = (SMTPException, OSError, ConnectionError)


def recipients_for(client: Client | None) -> list[str]:
    """The client's owner and the security mailbox, blanks skipped, each once."""
    candidates = [client.owner_email if client else "", settings.KEYWARD_SECURITY_EMAIL]
    return list(dict.fromkeys(address.strip() for address in candidates if address.strip()))


def absolute_url(viewname: str, *args) -> str:
    """A dashboard link for emails, or "" while the page's URL is not mounted."""
    try:
        return settings.KEYWARD_ISSUER + reverse(viewname, args=args)
    except NoReverseMatch:
        return ""


SEND_TASK = "security.tasks.send_notification"


def notification_queue(
    *,
    kind: str,
    template: str,
    context: dict,
    recipients: list[str],
    client: Client | None = None,
) -> NotificationLog | None:
    """Render security/emails/<template>-{subject,body}.{txt,html}, log it, send after commit.

    Call inside the transaction of the change being reported. Returns None when there
    is nobody to tell.
    """
    recipients = [address for address in dict.fromkeys(recipients) if address]
    if not recipients:
        return None
    context = {"client": client, "dashboard_url": settings.KEYWARD_ISSUER} | context
    subject = render_to_string(f"{EMAILS}/{template}-subject.txt", context)
    notification = NotificationLog.objects.create(
        kind=kind,
        recipients=recipients,
        subject=" ".join(subject.split())[:300],
        body_text=render_to_string(f"{EMAILS}/{template}-body.txt", context),
        body_html=render_to_string(f"{EMAILS}/{template}-body.html", context),
        client=client,
    )
    # robust: a broker outage must not turn a committed rotation into an error page
    # that never shows the new secret; the NotificationLog row stays pending instead.
    transaction.on_commit(lambda: _enqueue(notification.pk), robust=True)
    return notification


def _enqueue(notification_id: int) -> None:
    # By name: the task module imports this one, and the arrow stays one way. The
    # signature resolves to the registered task, so eager mode and retries behave the same.
    signature(SEND_TASK, args=(notification_id,)).delay()


def notification_send(notification_id: int, *, final_attempt: bool = True) -> bool:
    """Send one queued email. Returns False when it was already sent.

    1. Count the attempt (committed, so it survives the worker dying mid-send).
    2. Send through Django's email backend.
    3. On success mark it sent; on error record the error and re-raise so the task can
       retry. The row turns `failed` on the last attempt or on an error not worth retrying.
    """
    with transaction.atomic():
        notification = NotificationLog.objects.select_for_update().get(pk=notification_id)
        if notification.status == NotificationLog.Status.SENT:
            return False
        notification.attempts += 1
        notification.save(update_fields=["attempts"])
    message = EmailMultiAlternatives(
        subject=notification.subject,
        body=notification.body_text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=notification.recipients,
    )
    if notification.body_html:
        message.attach_alternative(notification.body_html, "text/html")
    try:
        message.send()
    except Exception as exc:
        final = final_attempt or not isinstance(exc, RETRYABLE_ERRORS)
        status = NotificationLog.Status.FAILED if final else NotificationLog.Status.PENDING
        NotificationLog.objects.filter(pk=notification_id).update(
            status=status, last_error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        log.warning(
            "notification %s attempt %s failed: %s", notification_id, notification.attempts, exc
        )
        raise
    NotificationLog.objects.filter(pk=notification_id).update(
        status=NotificationLog.Status.SENT, sent_at=timezone.now(), last_error=""
    )
    return True
