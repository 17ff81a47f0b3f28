"""Writes to the audit trail. Called by other apps' services inside their transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest

from base.http import client_ip

from .models import AdminAction


@dataclass(frozen=True)
class Actor:
    """Who made a change, and from where."""

    label: str
    user: AbstractBaseUser | None = None
    ip: str | None = None
    user_agent: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest) -> Actor:
        return cls(
            label=request.user.get_username(),
            user=request.user,
            ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", "")[:300],
        )

    @classmethod
    def cli(cls) -> Actor:
        return cls(label="cli")

    @classmethod
    def system(cls) -> Actor:
        return cls(label="system")


Fields = dict[str, Any]


def fields_changed(before: Fields, after: Fields) -> tuple[Fields, Fields]:
    """The fields whose value differs, as the (before, after) pair an audit row records.

    Both are empty when nothing changed; callers skip the write (and the row) then.
    """
    changed = [key for key in after if after[key] != before.get(key)]
    return {key: before.get(key) for key in changed}, {key: after[key] for key in changed}


def admin_action_record(
    *,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str,
    target_label: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AdminAction:
    return AdminAction.objects.create(
        actor=actor.user if actor.user is not None and actor.user.is_authenticated else None,
        actor_label=actor.label,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        target_label=target_label[:200],
        before=before,
        after=after,
        ip=actor.ip,
        user_agent=actor.user_agent,
    )
