"""Mail of the scope review: to a client's owner when a least-privilege change is applied
or rolled back; to reviewers when a campaign starts and before its deadline."""

from __future__ import annotations

import logging
from functools import partial

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from base.display import datetime_text
from clients.models import Client

from .models import GrantChange, ReviewCampaign

log = logging.getLogger("keyward.reviews")


def change_notify_on_commit(change: GrantChange, *, client: Client, event: str) -> None:
    if client.owner_email:
        transaction.on_commit(partial(_send, change, client.owner_email, event))


def _send(change: GrantChange, to: str, event: str) -> None:
    scopes = ", ".join(change.scope_names())
    body = (
        f"Keyward {event} a least-privilege change on client {change.client_name} "
        f"({change.client_id}).\n\nScopes removed by the change: {scopes}.\n"
        f"Change id: {change.pk} (rollback possible until {change.rollback_until():%Y-%m-%d}).\n"
    )
    try:
        send_mail(
            f"[Keyward] Scope change {event}: {change.client_name}",
            body,
            settings.DEFAULT_FROM_EMAIL,
            [to],
        )
    except OSError:
        # The change stands (committed, audited); a mail server outage must not undo it.
        log.warning("could not mail %s about change %s", to, change.pk)


def campaign_mail_on_commit(campaign: ReviewCampaign, *, to: str, pending: int, kind: str) -> None:
    """Tell a reviewer what waits for them: `kind` is "started" or "reminder". Rendered from
    templates/reviews/emails/campaign-{subject,body}.{txt,html}."""
    context = {
        "campaign": campaign,
        "pending": pending,
        "reminder": kind == "reminder",
        "deadline": datetime_text(campaign.deadline),
        "url": settings.KEYWARD_ISSUER + reverse("reviews:campaign", args=[campaign.pk]),
    }
    subject = " ".join(render_to_string("reviews/emails/campaign-subject.txt", context).split())
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("reviews/emails/campaign-body.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
    )
    message.attach_alternative(
        render_to_string("reviews/emails/campaign-body.html", context), "text/html"
    )
    transaction.on_commit(partial(_send_campaign_mail, message, campaign.pk))


def _send_campaign_mail(message: EmailMultiAlternatives, campaign_id) -> None:
    try:
        message.send()
    except OSError:
        # The campaign stands; the decision page lists the work whether or not mail arrives.
        log.warning("could not mail %s about campaign %s", message.to, campaign_id)
