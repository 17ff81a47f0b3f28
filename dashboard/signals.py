"""At login, note in the session whether the user must change their password first, so
keyward.middleware.PasswordChangeMiddleware decides without a query per request.

A reset while the user is signed in changes their password hash, which ends their sessions
(Django checks the hash on every request), so the next login always reads the row anew.
"""

from __future__ import annotations

from django.contrib.auth import user_logged_in

from .models import PasswordChangeRequired

MUST_CHANGE_PASSWORD = "keyward_must_change_password"  # noqa: S105 - a session key


def _note_password_change_required(sender, request, user, **kwargs) -> None:
    if PasswordChangeRequired.objects.filter(user=user).exists():
        request.session[MUST_CHANGE_PASSWORD] = True
    else:
        request.session.pop(MUST_CHANGE_PASSWORD, None)


user_logged_in.connect(_note_password_change_required, dispatch_uid="keyward.must_change_password")
