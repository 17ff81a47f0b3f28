"""Writes to clients, secrets, scopes and grants.

Every function validates, writes and records an AdminAction in one transaction, and
announces the change after commit so token-service caches drop the old state.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from audit.services import Actor, admin_action_record, fields_changed

from .models import Client, ClientSecret, Scope, ScopeGrant
from .secrets import secret_generate, secret_hash, secret_hint
from .signals import client_changed_on_commit

CLIENT_EDITABLE_FIELDS = (
    "name",
    "description",
    "owner_email",
    "environment",
    "access_token_lifetime",
    "allowed_networks",
    "denied_networks",
    "audiences",
    "can_introspect",
)


class ScopeInUse(Exception):
    def __init__(self, scope: Scope, holders: list[Client]):
        self.scope = scope
        self.holders = holders
        names = ", ".join(client.name for client in holders)
        super().__init__(f"Scope {scope.name} is still granted to: {names}")


def _user_or_none(actor: Actor):
    user = actor.user
    return user if user is not None and user.is_authenticated else None


def _new_secret_expiry(*, client: Client, created_at: datetime) -> datetime | None:
    """When a new secret of `client` expires, by the function KEYWARD_NEW_SECRET_EXPIRY names.

    The rule (the environment's secret policy) belongs to the secret lifecycle, which sits
    above clients and may import it, never the other way round. So the project names the
    rule in a setting, as AUTHENTICATION_BACKENDS names auth backends: one explicit line
    in keyward/settings.py, nothing registered at import time, easy to swap in a test.
    Without the setting, new secrets do not expire.
    """
    path = getattr(settings, "KEYWARD_NEW_SECRET_EXPIRY", "")
    return import_string(path)(client=client, created_at=created_at) if path else None


def client_secret_create(
    *, actor: Actor, client: Client, expires_at: datetime | None = None
) -> tuple[ClientSecret, str]:
    """Create a secret; returns the row and the plain secret, which is never stored."""
    if expires_at is None:
        expires_at = _new_secret_expiry(client=client, created_at=timezone.now())
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
        client_changed_on_commit(client.client_id)
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
    scope_reason: str = "",
) -> tuple[Client, str]:
    """Register a client with one secret and its initial scopes; returns (client, secret).

    `scope_reason` is kept with each initial grant; sensitive scopes need one.
    """
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
            reason = f"initial scope: {scope_reason}" if scope_reason else "initial scope"
            if scope.sensitive and not scope_reason.strip():
                raise ValidationError({"scope_reason": _sensitive_needs_reason(scope)})
            scope_grant(actor=actor, client=client, scope=scope, reason=reason)
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
        client_changed_on_commit(client.client_id)
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
        client_changed_on_commit(client.client_id)
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
        client_changed_on_commit(client_id)


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


def _sensitive_needs_reason(scope: Scope) -> str:
    return f"{scope.name} is sensitive: say why this client needs it."


def scope_grant(*, actor: Actor, client: Client, scope: Scope, reason: str = "") -> ScopeGrant:
    """Let `client` request `scope`; a sensitive scope is granted only with a reason."""
    if scope.sensitive and not reason.strip():
        raise ValidationError({"reason": _sensitive_needs_reason(scope)})
    # The reason is checked like every other field (length included): cutting it would
    # store one text while the audit row records another.
    ScopeGrant(client=client, scope=scope, reason=reason).full_clean(
        exclude=["client", "scope", "granted_by"], validate_unique=False, validate_constraints=False
    )
    with transaction.atomic():
        grant, created = ScopeGrant.objects.get_or_create(
            client=client,
            scope=scope,
            defaults={"granted_by": _user_or_none(actor), "reason": reason},
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
            client_changed_on_commit(client.client_id)
    return grant


def scope_grant_reason_update(*, actor: Actor, grant: ScopeGrant, reason: str) -> ScopeGrant:
    """Record or change why the client holds the scope; a sensitive scope's grant keeps one.
    The grant is otherwise unchanged (time, granter); nothing is recorded when the reason
    is the same."""
    scope = grant.scope
    if scope.sensitive and not reason.strip():
        raise ValidationError({"reason": _sensitive_needs_reason(scope)})
    ScopeGrant(client=grant.client, scope=scope, reason=reason).full_clean(
        exclude=["client", "scope", "granted_by"], validate_unique=False, validate_constraints=False
    )
    with transaction.atomic():
        grant = (
            ScopeGrant.objects.select_for_update()
            .select_related("client", "scope")
            .get(pk=grant.pk)
        )
        before, after = fields_changed({"reason": grant.reason}, {"reason": reason})
        if not after:
            return grant
        grant.reason = reason
        grant.save(update_fields=["reason"])
        admin_action_record(
            actor=actor,
            action="scope.grant_reason",
            target_type="client",
            target_id=grant.client.client_id,
            target_label=grant.client.name,
            before={"scope": scope.name, **before},
            after={"scope": scope.name, **after},
        )
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
            client_changed_on_commit(client.client_id)


def scope_grant_restore(
    *,
    actor: Actor,
    client: Client,
    scope: Scope,
    reason: str,
    granted_at: datetime,
    granted_by_id: int | None,
) -> ScopeGrant:
    """Put back a removed grant exactly as it was (reason, time and granter): the rollback of
    a least-privilege change. An existing grant of the scope is left as it is."""
    with transaction.atomic():
        grant, created = ScopeGrant.objects.get_or_create(
            client=client, scope=scope, defaults={"reason": reason}
        )
        if created:
            # granted_at is auto_now_add, which create() always overwrites: set it after.
            ScopeGrant.objects.filter(pk=grant.pk).update(
                granted_at=granted_at, granted_by_id=granted_by_id
            )
            grant.refresh_from_db()
            admin_action_record(
                actor=actor,
                action="scope.grant_restore",
                target_type="client",
                target_id=client.client_id,
                target_label=client.name,
                after={"scope": scope.name, "reason": reason, "granted_at": _iso(granted_at)},
            )
            client_changed_on_commit(client.client_id)
    return grant


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
