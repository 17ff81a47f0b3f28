"""Writes of the token service: signing-key rotation and token revocation."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import Actor, admin_action_record

from .keys import key_ring_reset, signing_key_new
from .models import RevokedToken, SigningKey
from .sink import denylist_add

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rotation:
    active: SigningKey
    next: SigningKey
    retired: SigningKey | None


def signing_key_rotate(*, actor: Actor, algorithm: str) -> Rotation:
    """Rotate the signing keys and record it.

    1. The "next" key, published in the JWKS since the last rotation, becomes active. With
       no next key (the first rotation), a new key of `algorithm` is promoted at once.
    2. The old active key is retired: still published until its tokens have expired.
    3. A new next key of `algorithm` is created, so resource servers fetch it before it signs.
    Switching algorithms therefore takes effect at the second rotation, unless no next key
    existed.
    """
    if algorithm not in SigningKey.Algorithm.values:
        raise ValueError(f"Unknown signing algorithm {algorithm!r}")
    now = timezone.now()
    with transaction.atomic():
        # Lock the live keys so two rotations cannot interleave.
        live = list(
            SigningKey.objects.select_for_update().filter(
                status__in=[SigningKey.Status.NEXT, SigningKey.Status.ACTIVE]
            )
        )
        current_active = next((k for k in live if k.status == SigningKey.Status.ACTIVE), None)
        promote = next((k for k in live if k.status == SigningKey.Status.NEXT), None)
        if current_active is not None:
            current_active.status = SigningKey.Status.RETIRED
            current_active.retired_at = now
            current_active.save(update_fields=["status", "retired_at"])
        if promote is None:
            promote = signing_key_new(algorithm=algorithm, status=SigningKey.Status.ACTIVE)
        promote.status = SigningKey.Status.ACTIVE
        promote.activated_at = now
        promote.save()
        new_next = signing_key_new(algorithm=algorithm, status=SigningKey.Status.NEXT)
        new_next.save()
        admin_action_record(
            actor=actor,
            action="signing_key.rotate",
            target_type="signing_key",
            target_id=promote.kid,
            target_label=promote.algorithm,
            before={"active": current_active.kid if current_active else None},
            after={
                "active": promote.kid,
                "active_algorithm": promote.algorithm,
                "next": new_next.kid,
                "next_algorithm": new_next.algorithm,
                "retired": current_active.kid if current_active else None,
            },
        )
        # This process signs with the new key at once; others within KEY_RECHECK_SECONDS.
        transaction.on_commit(key_ring_reset)
    key_ring_reset()  # also when an outer transaction (a test) holds the on_commit back
    return Rotation(active=promote, next=new_next, retired=current_active)


def access_token_revoke(*, jti: str, client_id: str, exp: int) -> None:
    """Denylist a token until it expires: a database row (fallback, embedded mode) and Redis."""
    expires_at = datetime.fromtimestamp(exp, tz=UTC)
    # IntegrityError: the same token revoked twice at the same moment.
    with contextlib.suppress(IntegrityError):
        RevokedToken.objects.get_or_create(
            jti=jti, defaults={"client_id": client_id, "expires_at": expires_at}
        )
    denylist_add(jti, int(exp - time.time()) + 1)


def revocations_purge() -> int:
    """Delete denylist rows of expired tokens, and put the live ones back into Redis.

    The second half repairs revocations made while Redis was down (they reached only the
    database); it is idempotent.
    """
    now = timezone.now()
    deleted, _ = RevokedToken.objects.filter(expires_at__lte=now).delete()
    restored = 0
    for jti, expires_at in RevokedToken.objects.filter(expires_at__gt=now).values_list(
        "jti", "expires_at"
    ):
        if denylist_add(jti, int((expires_at - now).total_seconds()) + 1):
            restored += 1
    log.info("Purged %d expired revocations; %d live ones in Redis", deleted, restored)
    return deleted
