"""Writes of the token service: signing-key rotation (manual and scheduled), token revocation."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import Actor, admin_action_record

from .keys import key_ring_reset, signing_key_new
from .models import NEXT_KEY_PUBLISH_LEAD, RevokedToken, SigningKey
from .sink import denylist_cache, denylist_rebuild

log = logging.getLogger(__name__)


def rotation_interval() -> timedelta | None:
    """KEYWARD_SIGNING_KEY_ROTATION_DAYS as a timedelta; None when 0 (no scheduled rotation)."""
    days = settings.KEYWARD_SIGNING_KEY_ROTATION_DAYS
    return timedelta(days=days) if days > 0 else None


def _utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


@dataclass(frozen=True)
class Rotation:
    active: SigningKey
    next: SigningKey
    retired: SigningKey | None
    forced: bool = False


class RotationTooEarly(Exception):
    """A rotation would let a key sign before validators' cached JWKS can know it."""

    def __init__(self, *, next_key: SigningKey):
        self.next_key = next_key
        self.possible_at = next_key.promotable_at()
        lead = int(NEXT_KEY_PUBLISH_LEAD.total_seconds())
        super().__init__(
            f"Not rotated: the next key {next_key.kid} is published since "
            f"{_utc(next_key.published_since())} and may sign from {_utc(self.possible_at)} "
            f"({lead} s later: the longest token lifetime plus the JWKS cache time), so that "
            "every validator with a cached JWKS knows it by then. Rotate again from that time, "
            "or force the rotation and accept that validators may reject new tokens until "
            "they refetch the JWKS."
        )


def _live_keys_locked() -> tuple[SigningKey | None, SigningKey | None]:
    """(active, next), row-locked until the transaction ends.

    Two statements on purpose: a rotation that waited for a concurrent one wakes up
    (PostgreSQL, READ COMMITTED) with the rows it matched before that one ran, minus those
    whose status changed, and without the next key that rotation inserted. The second
    statement takes a fresh snapshot, so every decision is made on the committed state.
    """
    live = [SigningKey.Status.NEXT, SigningKey.Status.ACTIVE]
    list(SigningKey.objects.select_for_update().filter(status__in=live))
    rows = list(SigningKey.objects.select_for_update().filter(status__in=live))
    active = next((k for k in rows if k.status == SigningKey.Status.ACTIVE), None)
    upcoming = next((k for k in rows if k.status == SigningKey.Status.NEXT), None)
    return active, upcoming


def _next_key_publish(*, actor: Actor, algorithm: str) -> SigningKey:
    """Insert a next key (published in the JWKS from now on) and record it."""
    key = signing_key_new(algorithm=algorithm, status=SigningKey.Status.NEXT)
    try:
        with transaction.atomic():  # savepoint: a racing first run may have inserted one
            key.save()
    except IntegrityError:
        return SigningKey.objects.get(status=SigningKey.Status.NEXT)
    admin_action_record(
        actor=actor,
        action="signing_key.publish_next",
        target_type="signing_key",
        target_id=key.kid,
        target_label=key.algorithm,
        after={"next": key.kid, "promotable_at": key.promotable_at().isoformat()},
    )
    log.info("Published next signing key %s (%s)", key.kid, key.algorithm)
    return key


def signing_key_publish_next(*, actor: Actor, algorithm: str) -> SigningKey:
    """The next key, created and published now if there is none."""
    with transaction.atomic():
        _active, upcoming = _live_keys_locked()
        return upcoming or _next_key_publish(actor=actor, algorithm=algorithm)


def _promote(
    *,
    actor: Actor,
    algorithm: str,
    active: SigningKey | None,
    upcoming: SigningKey | None,
    forced: bool,
) -> Rotation:
    """next → active, active → retired, a new next key; with the keys locked by the caller."""
    now = timezone.now()
    if active is not None:
        active.status = SigningKey.Status.RETIRED
        active.retired_at = now
        active.save(update_fields=["status", "retired_at"])
    if upcoming is None:
        upcoming = signing_key_new(algorithm=algorithm, status=SigningKey.Status.ACTIVE)
    upcoming.status = SigningKey.Status.ACTIVE
    upcoming.activated_at = now
    upcoming.save()
    new_next = signing_key_new(algorithm=algorithm, status=SigningKey.Status.NEXT)
    new_next.save()
    admin_action_record(
        actor=actor,
        action="signing_key.rotate",
        target_type="signing_key",
        target_id=upcoming.kid,
        target_label=upcoming.algorithm,
        before={"active": active.kid if active else None},
        after={
            "active": upcoming.kid,
            "active_algorithm": upcoming.algorithm,
            "next": new_next.kid,
            "next_algorithm": new_next.algorithm,
            "retired": active.kid if active else None,
            # True when the lead time was skipped on purpose (--force, page confirmation).
            "forced": forced,
        },
    )
    # This process signs with the new key at once; others within KEY_RECHECK_SECONDS.
    transaction.on_commit(key_ring_reset)
    return Rotation(active=upcoming, next=new_next, retired=active, forced=forced)


def signing_key_rotate(*, actor: Actor, algorithm: str, force: bool = False) -> Rotation:
    """Rotate the signing keys and record it (Keys page, rotate_signing_key, the schedule).

    1. Lock the live keys, so concurrent rotations run one after the other.
    2. No active key (fresh install): activate the next key, or a new key of `algorithm`, at
       once. Nothing has been signed yet, so no validator can miss anything.
    3. Otherwise the next key must have been in the JWKS for NEXT_KEY_PUBLISH_LEAD; if not,
       raise RotationTooEarly, after publishing a next key when there was none, so that the
       wait starts now. `force` skips this check, and the audit row says so.
    4. The next key becomes active; the old active key is retired, still published until its
       tokens have expired (RETIRED_KEY_PUBLISHED_FOR); a new next key of `algorithm` is
       created. A change of algorithm therefore signs from the following rotation.
    """
    if algorithm not in SigningKey.Algorithm.values:
        raise ValueError(f"Unknown signing algorithm {algorithm!r}")
    refused = None
    with transaction.atomic():
        active, upcoming = _live_keys_locked()
        early = active is not None and (upcoming is None or not upcoming.is_promotable())
        if early and not force:
            upcoming = upcoming or _next_key_publish(actor=actor, algorithm=algorithm)
            refused = RotationTooEarly(next_key=upcoming)
        else:
            rotation = _promote(
                actor=actor, algorithm=algorithm, active=active, upcoming=upcoming, forced=early
            )
    # Raised after the commit: the next key published above must stay.
    if refused is not None:
        raise refused
    key_ring_reset()  # also when an outer transaction (a test) holds the on_commit back
    return rotation


class ScheduleOutcome(StrEnum):
    ROTATED = "rotated"
    PUBLISHED_NEXT = "published_next"
    NOT_DUE = "not_due"
    WAITING_FOR_NEXT_KEY = "waiting_for_next_key"
    NO_ACTIVE_KEY = "no_active_key"
    DISABLED = "disabled"


@dataclass(frozen=True)
class ScheduleRun:
    """What one run of signing_keys_rotate_if_due did."""

    outcome: ScheduleOutcome
    rotation: Rotation | None = None
    published: SigningKey | None = None


def signing_keys_rotate_if_due(now: datetime | None = None) -> ScheduleRun:
    """The scheduled rotation (daily beat task tokens.tasks.rotate_signing_keys_if_due).

    1. Lock the live keys; a concurrent run waits and then sees what this one did.
    2. No next key: publish one (actor `system`); its lead time starts now. Done.
    3. No active key yet: nothing to rotate (the first token request creates one).
    4. Active key younger than KEYWARD_SIGNING_KEY_ROTATION_DAYS, or the next key published
       for less than NEXT_KEY_PUBLISH_LEAD: nothing to do.
    5. Otherwise rotate exactly like a manual rotation, actor `system`.
    Idempotent: a second run finds a freshly activated key and does nothing. `now` only
    moves the decision (tests); rows are stamped with the real time.
    """
    now = now or timezone.now()
    actor = Actor.system()
    algorithm = settings.KEYWARD_SIGNING_ALGORITHM
    interval = rotation_interval()
    with transaction.atomic():
        active, upcoming = _live_keys_locked()
        if upcoming is None:
            published = _next_key_publish(actor=actor, algorithm=algorithm)
            return ScheduleRun(ScheduleOutcome.PUBLISHED_NEXT, published=published)
        if active is None:
            return ScheduleRun(ScheduleOutcome.NO_ACTIVE_KEY)
        if interval is None:
            return ScheduleRun(ScheduleOutcome.DISABLED)
        if active.rotation_due_at(interval) > now:
            return ScheduleRun(ScheduleOutcome.NOT_DUE)
        if not upcoming.is_promotable(now):
            signs_from = _utc(upcoming.promotable_at())
            log.info("Rotation due; next key %s signs from %s", upcoming.kid, signs_from)
            return ScheduleRun(ScheduleOutcome.WAITING_FOR_NEXT_KEY)
        rotation = _promote(
            actor=actor, algorithm=algorithm, active=active, upcoming=upcoming, forced=False
        )
    key_ring_reset()
    log.info("Scheduled rotation: %s signs, %s retired", rotation.active.kid, active.kid)
    return ScheduleRun(ScheduleOutcome.ROTATED, rotation=rotation)


def access_token_revoke(*, jti: str, client_id: str, exp: int) -> None:
    """Denylist a token until it expires: the RevokedToken row (the source of truth),
    committed first, then its Redis key (sink.denylist_cache says why in that order)."""
    expires_at = datetime.fromtimestamp(exp, tz=UTC)
    # IntegrityError: the same token revoked twice at the same moment.
    with contextlib.suppress(IntegrityError):
        RevokedToken.objects.get_or_create(
            jti=jti, defaults={"client_id": client_id, "expires_at": expires_at}
        )
    denylist_cache(jti, int(exp - time.time()) + 1)


def revocations_purge() -> int:
    """Delete denylist rows of expired tokens, and copy the live ones into Redis again.

    The copy is a full rebuild (sink.denylist_rebuild); the beat task verify_denylist does
    the same within seconds when Redis needs it, this run is a slow safety net.
    """
    deleted, _ = RevokedToken.objects.filter(expires_at__lte=timezone.now()).delete()
    restored = denylist_rebuild()
    log.info("Purged %d expired revocations; %s live ones in Redis", deleted, restored)
    return deleted
