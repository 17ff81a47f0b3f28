"""Symmetric encryption for values Keyward must read back (signing keys, webhook secrets,
shown-once values): Fernet under a key derived by HKDF from a configured secret, one
`purpose` label per kind of value so no two kinds ever share a key."""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


@lru_cache(maxsize=16)
def fernet_for(secret: str, purpose: bytes) -> Fernet:
    """The Fernet for `purpose` (e.g. b"keyward signing keys v1") under `secret`; cached,
    since derivation costs more than the encryption it serves."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))
