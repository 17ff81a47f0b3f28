"""Client secrets: generation, keyed hashing and constant-time comparison.

Machine secrets are 256-bit random strings we generate, so a slow password hash would
add nothing but latency; HMAC-SHA256 with a server-side pepper means a stolen table
alone cannot be used to check guesses.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache

from base.conf import setting
from base.secrets import SECRET_PREFIX

__all__ = ["SECRET_PREFIX", "secret_generate", "secret_hash", "secret_hint"]


@lru_cache(maxsize=1)
def _pepper(value: str) -> bytes:
    return value.encode()


def secret_generate() -> str:
    """kwsec_ plus 43 URL-safe characters: 256 bits of randomness."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    key = _pepper(setting("KEYWARD_SECRET_PEPPER"))
    return hmac.new(key, secret.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def secret_hint(secret: str) -> str:
    return f"{SECRET_PREFIX}…{secret[-4:]}"
