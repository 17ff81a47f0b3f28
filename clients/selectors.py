"""Reads about clients' secrets: rotation progress, valid-secret counts, recent requests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.timesince import timesince

from audit.events import event_store

from .models import Client, ClientSecret


@dataclass(frozen=True)
class SecretProgress:
    """One secret of a client as the rotation-progress table shows it."""

    secret: ClientSecret
    last_used_at: datetime | None
    last_used_ip: str | None
    uses_since_rotation: int
    is_current: bool
    in_use: bool
    safe_to_revoke: bool
    status: str


def client_valid_secrets(*, client: Client, now: datetime | None = None) -> QuerySet:
    return client.secrets.valid(now)


def client_valid_secret_count(*, client: Client, now: datetime | None = None) -> int:
    return client_valid_secrets(client=client, now=now).count()


def client_secret_progress(*, client: Client, now: datetime | None = None) -> list[SecretProgress]:
    """Per secret, newest first: last use, successful uses since the latest rotation, and
    whether an older secret is still in use or safe to revoke.

    "Since the latest rotation" means since the newest secret was created. Uses come from
    the event store (analytics, above clients: reached through audit.events.event_store);
    the secret's own last_used_at, kept by event ingestion, is preferred when it is later
    than the newest event seen here.
    """
    now = now or timezone.now()
    secrets = list(client.secrets.order_by("-created_at", "-id"))
    if not secrets:
        return []
    rotated_at = secrets[0].created_at
    uses = event_store().secret_uses_since(
        secret_ids=[secret.pk for secret in secrets], since=rotated_at
    )
    counts = {secret_id: use.count for secret_id, use in uses.items()}
    # A consumer that switches during the overlap uses the old secret a few more times after
    # the rotation; once the new secret has been used, only later uses of an old one count.
    current = uses.get(secrets[0].pk)
    switched_at = current.first_at if current else None
    # Until the new secret is used, "no use since the rotation" proves little while tokens
    # issued before it are still valid: their holders have not needed a secret yet.
    quiet_until = None
    if switched_at is None:
        quiet_until = rotated_at + timedelta(seconds=client.access_token_lifetime)
    still_used = set()
    if switched_at is not None:
        still_used = {secret_id for secret_id, use in uses.items() if use.last_at > switched_at}
    return [
        _progress(
            secret,
            secret is secrets[0],
            uses.get(secret.pk),
            now,
            in_use=secret.pk in still_used if switched_at else counts.get(secret.pk, 0) > 0,
            quiet_until=quiet_until,
        )
        for secret in secrets
    ]


def _progress(
    secret: ClientSecret,
    is_current: bool,
    use,
    now: datetime,
    *,
    in_use: bool,
    quiet_until: datetime | None = None,
) -> SecretProgress:
    """`use`: the secret's successful uses since the rotation (the store's SecretUses), or
    None."""
    uses = use.count if use else 0
    last_at, last_ip = secret.last_used_at, secret.last_used_ip
    if uses and secret.is_valid(now) and (last_at is None or use.last_at > last_at):
        last_at, last_ip = use.last_at, use.last_ip
    too_soon = quiet_until is not None and now < quiet_until
    safe = not is_current and secret.is_valid(now) and not in_use and not too_soon
    status = _status(secret, is_current, in_use, last_at, last_ip, now, used_since=uses > 0)
    if too_soon and not is_current and not in_use and secret.is_valid(now):
        status = (
            "no use since rotation yet — tokens issued before it stay valid until "
            f"{quiet_until:%H:%M} UTC; safe to revoke then if still unused"
        )
    return SecretProgress(
        secret=secret,
        last_used_at=last_at,
        last_used_ip=last_ip,
        uses_since_rotation=uses,
        is_current=is_current,
        in_use=in_use,
        safe_to_revoke=safe,
        status=status,
    )


def _status(
    secret: ClientSecret,
    is_current: bool,
    in_use: bool,
    last_at: datetime | None,
    last_ip: str | None,
    now: datetime,
    *,
    used_since: bool,
) -> str:
    if secret.is_revoked():
        return f"revoked {_ago(secret.revoked_at, now)}"
    if secret.is_expired(now):
        return f"expired {_ago(secret.expires_at, now)}"
    last_use = "not used yet"
    if last_at:
        last_use = f"last used {_ago(last_at, now)}" + (f" from {last_ip}" if last_ip else "")
    if is_current:
        return f"current secret — {last_use}"
    if in_use:
        return f"in use — {last_use}"
    if used_since:
        return "not used since the new secret took over — safe to revoke"
    return "unused since rotation — safe to revoke"


def client_recent_token_events(*, client: Client, limit: int = 20) -> list:
    """The client's latest token-service requests, failures included (newest first): rows
    of the event store (analytics.models.TokenEvent).

    Events reach the table through ingestion, so the newest few seconds may be missing.
    """
    events = event_store().client_recent_token_events(client_id=client.client_id, limit=limit)
    return token_events_with_hints(events)


def token_events_with_hints(events: list) -> list:
    """Give each event `secret_hint`: pages name a secret by its hint (`kwsec_…Nlg4`), as the
    secrets table and the audit trail do, never by the row id the event records."""
    ids = {event.secret_id for event in events if event.secret_id is not None}
    hints = dict(ClientSecret.objects.filter(pk__in=ids).values_list("pk", "hint")) if ids else {}
    for event in events:
        event.secret_hint = hints.get(event.secret_id, "")
    return events


def _ago(moment: datetime, now: datetime) -> str:
    """ "3 minutes ago", or "just now" where timesince would say "0 minutes ago"."""
    if now - moment < timedelta(minutes=1):
        return "just now"
    return f"{timesince(moment, now)} ago"
