"""Webhook secrets: generated here, shown once, stored encrypted (they must sign, so a hash
would not do).

The same scheme as signing keys (base/crypto.py, under KEYWARD_KEY_ENCRYPTION_SECRET), with
its own purpose label so the two kinds of secret never share a key.
"""

from __future__ import annotations

import secrets

from cryptography.fernet import Fernet
from django.conf import settings

from base.crypto import fernet_for

WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - a public prefix, not a secret


def _fernet(secret: str) -> Fernet:
    return fernet_for(secret, b"keyward alert webhook secrets v1")


def webhook_secret_generate() -> str:
    """256 random bits, with a prefix that secret scanners and people recognise."""
    return WEBHOOK_SECRET_PREFIX + secrets.token_urlsafe(32)


def secret_encrypt(plain: str) -> str:
    return _fernet(settings.KEYWARD_KEY_ENCRYPTION_SECRET).encrypt(plain.encode()).decode()


def secret_decrypt(token: str) -> str:
    return _fernet(settings.KEYWARD_KEY_ENCRYPTION_SECRET).decrypt(token.encode()).decode()
