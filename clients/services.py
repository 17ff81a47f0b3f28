"""Writes to clients, secrets, scopes and grants.

Every function validates, writes and records an AdminAction in one transaction, and
announces the change after commit so token-service caches drop the old state.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import Actor, admin_action_record, fields_changed

from .models import (
    DEFAULT_MAX_SECRET_AGE_DAYS,
    Client,
    ClientSecret,
    NotificationLog,
    Scope,
    ScopeGrant,
    SecretPolicy,
)
from .notifications import notification_queue, recipients_for
from .secrets import secret_generate, secret_hash, secret_hint
from .signals import client_changed

CLIENT_EDITABLE_FIELDS = (
    "name",
    "description",
    "owner_email",
    "environment",
    "access_token_lifetime",
    "allowed_networks",
    "audiences",
    "can_introspect",
)


class ScopeInUse(Exception):
    def __init__(self, scope: Scope, holders: list[Client]):
        self.scope = scope
        self.holders = holders
        names = ", ".join(client.name for client in holders)
        super().__init__(f"Scope {scope.name} is still granted to: {names}")


def _announce(client_id: str) -> None:
    transaction.on_commit(lambda: client_changed.send(sender=client_id))


def _user_or_none(actor: Actor):
    user = actor.user
    return user if user is not None and user.is_authenticated else None


def client_secret_create(
    *, actor: Actor, client: Client, expires_at: datetime | None = None
) -> tuple[ClientSecret, str]:
    """Create a secret; returns the row and the plain secret, which is never stored."""
    if expires_at is None:  # issue 4: the environment's policy sets the expiry
        expires_at = SecretPolicy.for_environment(client.environment).expiry_for(timezone.now())
    plain = secret_generate()
    with transaction.atomic():
        secret = ClientSecret.objects.create(
            client=client,
            secret_hash=secret_hash(plain),
            hint=secret_hint(plain),
            expires_at=expires_at,
            created_by=_user_or_none(actor),
        )
        admin_action_record(
            actor=actor,
            action="secret.create",
            target_type="client",
            target_id=client.client_id,
            target_label=client.name,
            after={"secret_id": secret.pk, "hint": secret.hint, "expires_at": _iso(expires_at)},
        )
        _announce(client.client_id)
    return secret, plain


def client_register(
    *,
    actor: Actor,
    name: str,
    environment: str = Client.Environment.DEVELOPMENT,
    description: str = "",
    owner_email: str = "",
    access_token_lifetime: int = 3600,
    allowed_networks: list[str] | None = None,
    audiences: list[str] | None = None,
    can_introspect: bool = False,
    scopes: list[Scope] | None = None,
) -> tuple[Client, str]:
    """Register a client with one secret and its initial scopes; returns (client, secret)."""
    client = Client(
        name=name,
        environment=environment,
        description=description,
        owner_email=owner_email,
        access_token_lifetime=access_token_lifetime,
        allowed_networks=allowed_networks or [],
        audiences=audiences or [],
        can_introspect=can_introspect,
        created_by=_user_or_none(actor),
    )
    client.full_clean()
    with transaction.atomic():
        client.save()
        admin_action_record(
            actor=actor,
            action="client.register",
            target_type="client",
            target_id=client.client_id,
            target_label=client.name,
            after=client.audit_fields(),
        )
        for scope in scopes or []:
            scope_grant(actor=actor, client=client, scope=scope, reason="initial scope")
        _secret, plain = client_secret_create(actor=actor, client=client)
    return client, plain


def client_update(*, actor: Actor, client: Client, **changes) -> Client:
    unknown = set(changes) - set(CLIENT_EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"Not editable: {', '.join(sorted(unknown))}")
    before = client.audit_fields()
    for field, value in changes.items():
        setattr(client, field, value)
    client.full_clean()
    before, after = fields_changed(before, client.audit_fields())
    if not after:
        return client
    with transaction.atomic():
        client.save()
        admin_action_record(
            actor=actor,
            action="client.update",
            target_type="client",
            target_id=client.client_id,
            target_label=client.name,
            before=before,
            after=after,
        )
        _announce(client.client_id)
    return client


def client_set_status(*, actor: Actor, client: Client, status: str) -> Client:
    if status not in Client.Status.values:
        raise ValidationError({"status": f"Unknown status {status!r}."})
    if client.status == status:
        return client
    before = client.status
    with transaction.atomic():
        client.status = status
        client.save(update_fields=["status", "updated_at"])
        admin_action_record(
            actor=actor,
            action="client.enable" if status == Client.Status.ACTIVE else "client.disable",
            target_type="client",
            target_id=client.client_id,
            target_label=client.name,
            before={"status": before},
            after={"status": status},
        )
        _announce(client.client_id)
    return client


def client_delete(*, actor: Actor, client: Client) -> None:
    before = client.audit_fields() | {"scopes": client.scope_names()}
    with transaction.atomic():
        client_id = client.client_id
        client.delete()
        admin_action_record(
            actor=actor,
            action="client.delete",
            target_type="client",
            target_id=client_id,
            target_label=before["name"],
            before=before,
        )
        _announce(client_id)


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
        if notify:  # issue 4: owner and security mailbox hear about every revocation
            _notify_secret_revoked(actor=actor, secret=secret)
        _announce(client.client_id)
    return secret


def scope_create(
    *, actor: Actor, name: str, description: str = "", owning_team: str = "", sensitive=False
) -> Scope:
    scope = Scope(name=name, description=description, owning_team=owning_team, sensitive=sensitive)
    scope.full_clean()
    with transaction.atomic():
        scope.save()
        admin_action_record(
            actor=actor,
            action="scope.create",
            target_type="scope",
            target_id=scope.name,
            target_label=scope.name,
            after=scope.audit_fields(),
        )
    return scope


def scope_update(*, actor: Actor, scope: Scope, **changes) -> Scope:
    """Edit description, team and sensitivity. A scope's name is its identity: not editable."""
    allowed = {"description", "owning_team", "sensitive"}
    if set(changes) - allowed:
        raise ValueError(f"Not editable: {', '.join(sorted(set(changes) - allowed))}")
    before = scope.audit_fields()
    for field, value in changes.items():
        setattr(scope, field, value)
    scope.full_clean()
    before, after = fields_changed(before, scope.audit_fields())
    if not after:
        return scope
    with transaction.atomic():
        scope.save()
        admin_action_record(
            actor=actor,
            action="scope.update",
            target_type="scope",
            target_id=scope.name,
            target_label=scope.name,
            before=before,
            after=after,
        )
    return scope


def scope_delete(*, actor: Actor, scope: Scope) -> None:
    """Delete a scope nobody holds; raises ScopeInUse naming the holders otherwise."""
    with transaction.atomic():
        # Lock the scope so a grant cannot slip in between the check and the delete.
        scope = Scope.objects.select_for_update().get(pk=scope.pk)
        holders = list(Client.objects.filter(grants__scope=scope).order_by("name"))
        if holders:
            raise ScopeInUse(scope, holders)
        before = scope.audit_fields()
        scope.delete()
        admin_action_record(
            actor=actor,
            action="scope.delete",
            target_type="scope",
            target_id=before["name"],
            target_label=before["name"],
            before=before,
        )


def scope_grant(*, actor: Actor, client: Client, scope: Scope, reason: str = "") -> ScopeGrant:
    with transaction.atomic():
        grant, created = ScopeGrant.objects.get_or_create(
            client=client,
            scope=scope,
            defaults={"granted_by": _user_or_none(actor), "reason": reason[:300]},
        )
        if created:
            admin_action_record(
                actor=actor,
                action="scope.grant",
                target_type="client",
                target_id=client.client_id,
                target_label=client.name,
                after={"scope": scope.name, "reason": reason},
            )
            _announce(client.client_id)
    return grant


def scope_revoke(*, actor: Actor, client: Client, scope: Scope) -> None:
    with transaction.atomic():
        deleted, _ = ScopeGrant.objects.filter(client=client, scope=scope).delete()
        if deleted:
            admin_action_record(
                actor=actor,
                action="scope.revoke",
                target_type="client",
                target_id=client.client_id,
                target_label=client.name,
                before={"scope": scope.name},
            )
            _announce(client.client_id)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# Secret lifecycle (issue 4) -------------------------------------------------------------

MAX_VALID_SECRETS = 3
MAX_ROTATION_GRACE = timedelta(days=90)
POLICY_FIELDS = (
    "max_secret_age_days",
    "auto_revoke_replaced_after_days",
    "auto_disable_dormant_after_days",
)


def _valid_secrets(client: Client, now: datetime):
    return client.secrets.filter(revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )


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
        older = list(_valid_secrets(client, now).select_for_update())
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
            expires_at=SecretPolicy.for_environment(client.environment).expiry_for(now),
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
        _announce(client.client_id)
    return secret, plain


def _secret_audit(secret: ClientSecret) -> dict:
    return {"secret_id": secret.pk, "hint": secret.hint, "expires_at": _iso(secret.expires_at)}


def _notify_secret_revoked(*, actor: Actor, secret: ClientSecret) -> None:
    client = secret.client
    notification_queue(
        kind=NotificationLog.Kind.SECRET_REVOKED,
        template="secret_revoked",
        context={
            "actor": actor.label,
            "secret": secret,
            "valid_left": _valid_secrets(client, timezone.now()).count(),
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
        after = policy.audit_fields()
        if after == before:
            return policy
        changed = [key for key in after if after[key] != before[key]]
        policy.updated_by = _user_or_none(actor)
        policy.save()
        admin_action_record(
            actor=actor,
            action="policy.update",
            target_type="secret_policy",
            target_id=environment,
            target_label=f"{environment} secret policy",
            before={key: before[key] for key in changed},
            after={key: after[key] for key in changed},
        )
        # Drop the cached policy now (later reads in this transaction) and again after
        # commit (a reader in between may have cached the old row).
        cache.delete(SecretPolicy.cache_key(environment))
        transaction.on_commit(lambda: cache.delete(SecretPolicy.cache_key(environment)))
    return policy
