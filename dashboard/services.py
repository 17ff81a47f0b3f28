"""Writes to dashboard users and their roles; each records an AdminAction in its transaction.

A user holds exactly one role group (viewer, operator or admin). Passwords never reach
the audit trail.
"""

from __future__ import annotations

import secrets

from django.contrib.auth.models import Group, User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from audit.services import Actor, admin_action_record
from base.roles import ROLE_BY_GROUP, Role

from .models import PasswordChangeRequired

ROLE_NAMES = tuple(ROLE_BY_GROUP)


class UserChangeRefused(Exception):
    """A change an admin may not make, such as demoting or deactivating themselves."""


def _role_group(role: str) -> Group:
    if role not in ROLE_NAMES:
        raise ValidationError(
            {"role": f"Unknown role {role!r}; use one of {', '.join(ROLE_NAMES)}."}
        )
    return Group.objects.get(name=role)


def user_group_role(user: User) -> Role | None:
    """The role a user's groups give, whether or not the account is active."""
    names = user.groups.values_list("name", flat=True)
    roles = [ROLE_BY_GROUP[name] for name in names if name in ROLE_BY_GROUP]
    return max(roles) if roles else None


def _refuse_self(actor: Actor, user: User, what: str) -> None:
    if actor.user is not None and actor.user.pk == user.pk:
        raise UserChangeRefused(f"You cannot {what} your own account; ask another admin.")


def generate_password() -> str:
    """20 URL-safe characters (120 bits); shown once to the admin, changed at first login."""
    return secrets.token_urlsafe(15)


def user_create(
    *,
    actor: Actor,
    username: str,
    email: str,
    role: str,
    password: str,
    must_change_password: bool = False,
) -> User:
    """Create an active user holding `role`; the password must pass Django's validators.

    `must_change_password` for a password the admin did not choose with the user (a
    generated one): they replace it at their first login.
    """
    group = _role_group(role)
    user = User(username=username, email=email)
    user.full_clean(exclude=["password"])
    validate_password(password, user)
    user.set_password(password)
    with transaction.atomic():
        user.save()
        user.groups.add(group)
        if must_change_password:
            PasswordChangeRequired.objects.create(user=user)
        admin_action_record(
            actor=actor,
            action="user.create",
            target_type="user",
            target_id=user.username,
            target_label=user.username,
            after={
                "username": user.username,
                "email": user.email,
                "role": role,
                "active": True,
                "must_change_password": must_change_password,
            },
        )
    return user


def user_password_reset(*, actor: Actor, user: User) -> str:
    """Give `user` a generated password they must change at their next login; returns it.

    Their sessions end with the old password (Django checks the password hash per request).
    The audit row records that it happened, never the password.
    """
    _refuse_self(actor, user, "reset the password of")
    password = generate_password()
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        PasswordChangeRequired.objects.update_or_create(user=user)
        admin_action_record(
            actor=actor,
            action="user.password_reset",
            target_type="user",
            target_id=user.username,
            target_label=user.username,
            after={"must_change_password": True},
        )
    return password


def user_password_change(*, actor: Actor, user: User, password: str) -> None:
    """The user sets their own password (validated by the form); the change requirement ends."""
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        required = PasswordChangeRequired.objects.filter(user=user).delete()[0] > 0
        admin_action_record(
            actor=actor,
            action="user.password_change",
            target_type="user",
            target_id=user.username,
            target_label=user.username,
            after={"required": required},
        )


def user_set_role(*, actor: Actor, user: User, role: str) -> User:
    """Give `user` exactly the role `role`, removing any other role group."""
    group = _role_group(role)
    before = user_group_role(user)
    if before is not None and before.label == role:
        return user
    _refuse_self(actor, user, "change the role of")
    with transaction.atomic():
        others = Group.objects.filter(name__in=ROLE_NAMES).exclude(pk=group.pk)
        user.groups.remove(*others)
        user.groups.add(group)
        admin_action_record(
            actor=actor,
            action="user.set_role",
            target_type="user",
            target_id=user.username,
            target_label=user.username,
            before={"role": before.label if before else None},
            after={"role": role},
        )
    user.__dict__.pop("_keyward_role", None)
    return user


def user_set_active(*, actor: Actor, user: User, active: bool) -> User:
    """Deactivate (the user can no longer log in; sessions stop working) or reactivate."""
    if user.is_active == active:
        return user
    _refuse_self(actor, user, "deactivate")
    with transaction.atomic():
        user.is_active = active
        user.save(update_fields=["is_active"])
        admin_action_record(
            actor=actor,
            action="user.reactivate" if active else "user.deactivate",
            target_type="user",
            target_id=user.username,
            target_label=user.username,
            before={"active": not active},
            after={"active": active},
        )
    return user
