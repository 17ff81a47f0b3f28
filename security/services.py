"""Writes of the secret lifecycle: rotation, revocation, policies.

Like clients.services, every function validates, writes and records an AdminAction in
one transaction; rotation and revocation also queue their email in it (security/
notifications.py) and tell token-service caches after commit.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import Actor, admin_action_record, fields_changed
from clients.models import Client, ClientSecret
from clients.secrets import secret_generate, secret_hash, secret_hint
from clients.selectors import client_valid_secrets
from clients.signals import client_changed_on_commit

from .models import DEFAULT_MAX_SECRET_AGE_DAYS, NotificationLog, SecretPolicy
from .notifications import notification_queue, recipients_for

MAX_VALID_SECRETS = 3
MAX_ROTATION_GRACE = timedelta(days=90)
POLICY_FIELDS = (
    "max_secret_age_days",
    "auto_revoke_replaced_after_days",
    "auto_disable_dormant_after_days",
)


def _user_or_none(actor: Actor):
    user = actor.user
    return user if user is not None and user.is_authenticated else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def new_secret_expiry(*, client: Client, created_at: datetime) -> datetime | None:
    """The expiry the environment's policy gives a secret created at `created_at`.

    clients.services calls this through settings.KEYWARD_NEW_SECRET_EXPIRY when it
    registers a client, so the first secret follows the same policy as rotated ones.
    """
    return SecretPolicy.for_environment(client.environment).expiry_for(created_at)


def client_secret_rotate(
    *, actor: Actor, client: Client, grace: timedelta
) -> tuple[ClientSecret, str]:
    """Create a new secret and let the current ones run out after `grace`.

    1. Refuse a grace outside 0..90 days, or a rotation that would leave more than
       MAX_VALID_SECRETS valid at once (grace 0 expires the others, so it is allowed).
    2. Create the new secret with the expiry the environment's policy gives.
    3. Cut every valid older secret's expiry to min(its expiry, now + grace); grace 0
       expires them at once.
    4. Audit with hints only, queue the email, and tell token-service caches on commit.
    """
    if grace < timedelta(0) or grace > MAX_ROTATION_GRACE:
        raise ValidationError({"grace": "The old secret can stay valid for 0 to 90 days."})
    now = timezone.now()
    cutoff = now + grace
    plain = secret_generate()
    with transaction.atomic():
        # Lock the client: two rotations at once must not both pass the count check.
        Client.objects.select_for_update().filter(pk=client.pk).first()
        older = list(client_valid_secrets(client=client, now=now).select_for_update())
        if len(older) >= MAX_VALID_SECRETS and grace > timedelta(0):
            raise ValidationError(
                f"{client.name} already has {len(older)} valid secrets, the most allowed at "
                "once. Revoke one first, or rotate with the old secrets expiring immediately."
            )
        secret = ClientSecret.objects.create(
            client=client,
            secret_hash=secret_hash(plain),
            hint=secret_hint(plain),
            created_at=now,
            expires_at=new_secret_expiry(client=client, created_at=now),
            created_by=_user_or_none(actor),
        )
        before, replaced = [], []
        for old in older:
            before.append(_secret_audit(old))
            old.expires_at = min(old.expires_at or cutoff, cutoff)
            old.save(update_fields=["expires_at"])
            replaced.append(_secret_audit(old))
        admin_action_record(
            actor=actor,
            action="secret.rotate",
            target_type="client",
            target_id=client.client_id,
            target_label=client.name,
            before={"secrets": before},
            after={
                "new_secret": _secret_audit(secret),
                "old_secrets": replaced,
                "grace_seconds": int(grace.total_seconds()),
            },
        )
        notification_queue(
            kind=NotificationLog.Kind.SECRET_ROTATED,
            template="secret_rotated",
            context={"actor": actor.label, "secret": secret, "old_secrets": older},
            recipients=recipients_for(client),
            client=client,
        )
        client_changed_on_commit(client.client_id)
    return secret, plain


def _secret_audit(secret: ClientSecret) -> dict:
    return {"secret_id": secret.pk, "hint": secret.hint, "expires_at": _iso(secret.expires_at)}


def client_secret_revoke(
    *, actor: Actor, secret: ClientSecret, notify: bool = True
) -> ClientSecret:
    """Revoke one secret now. `notify=False` lets an auto-action send its own email."""
    client = secret.client
    with transaction.atomic():
        # Lock the row: two revocations at once must write one audit row and one email.
        secret = ClientSecret.objects.select_for_update().get(pk=secret.pk)
        if secret.revoked_at is not None:
            return secret
        secret.revoked_at = timezone.now()
        secret.save(update_fields=["revoked_at"])
        admin_action_record(
            actor=actor,
            action="secret.revoke",
            target_type="client",
            target_id=client.client_id,
            target_label=client.name,
            after={"secret_id": secret.pk, "hint": secret.hint},
        )
        if notify:  # the owner and the security mailbox hear about every revocation
            _notify_secret_revoked(actor=actor, secret=secret)
        client_changed_on_commit(client.client_id)
    return secret


def _notify_secret_revoked(*, actor: Actor, secret: ClientSecret) -> None:
    client = secret.client
    notification_queue(
        kind=NotificationLog.Kind.SECRET_REVOKED,
        template="secret_revoked",
        context={
            "actor": actor.label,
            "secret": secret,
            "valid_left": client_valid_secrets(client=client).count(),
        },
        recipients=recipients_for(client),
        client=client,
    )


def secret_policy_update(*, actor: Actor, environment: str, **fields) -> SecretPolicy:
    """Change an environment's secret policy; empty values (None) switch a rule off."""
    unknown = set(fields) - set(POLICY_FIELDS)
    if unknown:
        raise ValueError(f"Not editable: {', '.join(sorted(unknown))}")
    if environment not in Client.Environment.values:
        raise ValidationError({"environment": f"Unknown environment {environment!r}."})
    with transaction.atomic():
        policy, _ = SecretPolicy.objects.select_for_update().get_or_create(
            environment=environment,
            defaults={"max_secret_age_days": DEFAULT_MAX_SECRET_AGE_DAYS.get(environment)},
        )
        before = policy.audit_fields()
        for field, value in fields.items():
            setattr(policy, field, value)
        policy.full_clean()
        before, after = fields_changed(before, policy.audit_fields())
        if not after:
            return policy
        policy.updated_by = _user_or_none(actor)
        policy.save()
        admin_action_record(
            actor=actor,
            action="policy.update",
            target_type="secret_policy",
            target_id=environment,
            target_label=f"{environment} secret policy",
            before=before,
            after=after,
        )
        # Drop the cached policy now (later reads in this transaction) and again after
        # commit (a reader in between may have cached the old row).
        cache.delete(SecretPolicy.cache_key(environment))
        transaction.on_commit(lambda: cache.delete(SecretPolicy.cache_key(environment)))
    return policy
