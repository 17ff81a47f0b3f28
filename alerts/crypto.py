"""Webhook secrets: generated here, shown once, stored encrypted (they must sign, so a hash
would not do).

The same scheme as signing keys (tokens/keys.py): Fernet with a key derived by HKDF from
KEYWARD_KEY_ENCRYPTION_SECRET, here under its own `info` label so the two kinds of secret
never share a key. Reimplemented in six lines instead of imported: tokens keeps its
derivation private, and a shared helper would have to live in base and change tokens.
"""

from __future__ import annotations

import base64
import secrets
from functools import lru_cache

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - a public prefix, not a secret


@lru_cache(maxsize=4)
def _fernet(secret: str) -> Fernet:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"keyward alert webhook secrets v1"
    ).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def webhook_secret_generate() -> str:
    """256 random bits, with a prefix that secret scanners and people recognise."""
    return WEBHOOK_SECRET_PREFIX + secrets.token_urlsafe(32)


def secret_encrypt(plain: str) -> str:
    return _fernet(settings.KEYWARD_KEY_ENCRYPTION_SECRET).encrypt(plain.encode()).decode()


def secret_decrypt(token: str) -> str:
    return _fernet(settings.KEYWARD_KEY_ENCRYPTION_SECRET).decrypt(token.encode()).decode()
