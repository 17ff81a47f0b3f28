"""Ingestion tokens: created and revoked by admins, presented by log shippers.

A token is `kwing_` + a 12-hex-digit lookup part + `_` + 43 URL-safe characters (256
bits). The fixed prefix lets secret scanners match a leaked token; the lookup part finds the
row without scanning, and only `HMAC-SHA256(pepper, token)` is stored (clients/secrets.py:
random tokens need no slow hash, and the pepper keeps a stolen table from checking
guesses). Each write records an AdminAction in its transaction.
"""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.events import SOURCE_KEYWARD
from audit.services import Actor, admin_action_record
from clients.secrets import secret_hash

from .formats import SOURCE_NAME_RE
from .models import IngestionToken

TOKEN_PREFIX = "kwing_"  # noqa: S105 - a public prefix, not a secret
_TOKEN_RE = re.compile(r"\Akwing_([0-9a-f]{12})_[A-Za-z0-9_-]{43}\Z")
# last_used_at is moved at most this often per token: a shipper posting every second
# should not cost a row update per request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def source_name_problem(source: str) -> str | None:
    """Why `source` cannot name ingested events, or None."""
    if not SOURCE_NAME_RE.match(source):
        return "Use lowercase letters, digits, '.', '_' or '-' (at most 64), e.g. keycloak-prod."
    if source == SOURCE_KEYWARD:
        # Keyward's own events move the last use of clients and secrets; nobody outside
        # may write them.
        return f"'{SOURCE_KEYWARD}' is reserved for Keyward's own token service."
    return None


def ingestion_token_create(
    *, actor: Actor, name: str, source: str, expires_at: datetime | None = None
) -> tuple[IngestionToken, str]:
    """A new token and its plain value (returned once, never stored)."""
    problem = source_name_problem(source)
    if problem:
        raise ValidationError({"source": problem})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    lookup = secrets.token_hex(6)
    plain = f"{TOKEN_PREFIX}{lookup}_{secrets.token_urlsafe(32)}"
    user = actor.user if actor.user is not None and actor.user.is_authenticated else None
    token = IngestionToken(
        name=name.strip(),
        source=source,
        lookup=lookup,
        token_hash=secret_hash(plain),
        created_by=user,
        expires_at=expires_at,
    )
    token.full_clean()
    with transaction.atomic():
        token.save()
        admin_action_record(
            actor=actor,
            action="ingestion_token.create",
            target_type="ingestion_token",
            target_id=str(token.pk),
            target_label=token.name,
            after=_audit_fields(token),
        )
    return token, plain


def ingestion_token_revoke(*, actor: Actor, token: IngestionToken) -> IngestionToken:
    """Revoke `token` at once; revoking a revoked token changes nothing and records nothing."""
    with transaction.atomic():
        token = IngestionToken.objects.select_for_update().get(pk=token.pk)
        if token.is_revoked():
            return token
        token.revoked_at = timezone.now()
        token.revoked_by = (
            actor.user if actor.user is not None and actor.user.is_authenticated else None
        )
        token.save(update_fields=["revoked_at", "revoked_by"])
        admin_action_record(
            actor=actor,
            action="ingestion_token.revoke",
            target_type="ingestion_token",
            target_id=str(token.pk),
            target_label=token.name,
            before={"status": IngestionToken.Status.ACTIVE},
            after={"status": IngestionToken.Status.REVOKED, "revoked_at": _iso(token.revoked_at)},
        )
    return token


class TokenRefused(Exception):  # noqa: N818 - a verdict, answered 401
    """The presented token is not a valid ingestion token; the message says why."""


def ingestion_token_authenticate(value: str) -> IngestionToken:
    """The active token `value` is, or TokenRefused. Moves its last use forward.

    The message tells revoked and expired tokens apart from unknown ones: only someone
    holding the real token can learn its state.
    """
    match = _TOKEN_RE.match(value)
    if match is None:
        raise TokenRefused("not an ingestion token")
    token = IngestionToken.objects.filter(lookup=match[1]).first()
    # Compared even when no row matched, so timing does not tell a known lookup part.
    expected = token.token_hash if token is not None else "0" * 64
    if not hmac.compare_digest(secret_hash(value), expected) or token is None:
        raise TokenRefused("unknown token")
    if token.is_revoked():
        raise TokenRefused("token revoked")
    now = timezone.now()
    if token.is_expired(now):
        raise TokenRefused("token expired")
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        IngestionToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _audit_fields(token: IngestionToken) -> dict:
    """What the audit trail keeps of a token: never the token, only its hint."""
    return {
        "name": token.name,
        "source": token.source,
        "hint": token.hint,
        "expires_at": _iso(token.expires_at),
    }
