"""Signing keys: generation, encryption at rest, the per-process key ring, JWT sign and verify.

joserfc generates and serialises the keys (PEM, public JWK, RFC 7638 thumbprint). The hot
path signs and verifies with the `cryptography` key objects joserfc parsed, over a header
segment encoded once per key: joserfc's `jwt.encode` costs ~55 µs more per token than the
signature itself (measured: ES256 85 µs vs 28 µs), a third of the ES256 budget.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson
from cachetools import LRUCache, TTLCache, cached
from cryptography.exceptions import InvalidSignature
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from joserfc.jwk import ECKey, OKPKey, RSAKey

from .database_thread import database_io
from .models import NEXT_KEY_PUBLISH_LEAD, SigningKey

log = logging.getLogger(__name__)

ALGORITHMS = tuple(SigningKey.Algorithm.values)
# How long a process trusts its answer to "which keys are published" (a one-line query).
KEY_RECHECK_SECONDS = 5.0
# Longest token we try to verify; anything longer is garbage.
MAX_TOKEN_LENGTH = 8192
ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")  # RFC 9068 §4


# --- Encryption at rest -------------------------------------------------------------------


@lru_cache(maxsize=4)
def _fernet(secret: str) -> Fernet:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"keyward signing keys v1"
    ).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def private_key_encrypt(pem: bytes) -> str:
    return _fernet(settings.KEYWARD_KEY_ENCRYPTION_SECRET).encrypt(pem).decode()


def private_key_decrypt(token: str) -> bytes:
    return _fernet(settings.KEYWARD_KEY_ENCRYPTION_SECRET).decrypt(token.encode())


# --- Generation ---------------------------------------------------------------------------


def _generate(algorithm: str):
    if algorithm == SigningKey.Algorithm.RS256:
        return RSAKey.generate_key(2048, private=True)
    if algorithm == SigningKey.Algorithm.ES256:
        return ECKey.generate_key("P-256", private=True)
    if algorithm == SigningKey.Algorithm.EDDSA:
        return OKPKey.generate_key("Ed25519", private=True)
    raise ValueError(f"Unsupported signing algorithm {algorithm!r}; choose one of {ALGORITHMS}")


def _import(algorithm: str, pem: bytes):
    cls = {"RS256": RSAKey, "ES256": ECKey, "EdDSA": OKPKey}[algorithm]
    return cls.import_key(pem)


def signing_key_new(*, algorithm: str, status: str) -> SigningKey:
    """A new, unsaved key row with an encrypted private key and its public JWK."""
    key = _generate(algorithm)
    kid = key.thumbprint()
    public = key.as_dict(private=False)
    public.update({"kid": kid, "alg": algorithm, "use": "sig"})
    return SigningKey(
        kid=kid,
        algorithm=algorithm,
        private_key_encrypted=private_key_encrypt(key.as_pem(private=True)),
        public_jwk=public,
        status=status,
        activated_at=timezone.now() if status == SigningKey.Status.ACTIVE else None,
    )


@database_io
def signing_key_ensure_active() -> None:
    """Create an active key when there is none (first use). Safe against racing processes:
    the partial unique index lets exactly one insert win; the losers just reload."""
    if SigningKey.objects.filter(status=SigningKey.Status.ACTIVE).exists():
        return
    key = signing_key_new(
        algorithm=settings.KEYWARD_SIGNING_ALGORITHM, status=SigningKey.Status.ACTIVE
    )
    try:
        with transaction.atomic():
            key.save()
    except IntegrityError:
        log.info("Another process created the first signing key; using it")
    else:
        log.info("Created the first signing key %s (%s)", key.kid, key.algorithm)


# --- Compact JWS primitives ---------------------------------------------------------------


def b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def b64url_decode(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


_RSA_PADDING = padding.PKCS1v15()
_SHA256 = hashes.SHA256()
_ECDSA = ec.ECDSA(hashes.SHA256())


def _sign(algorithm: str, private_key, data: bytes) -> bytes:
    if algorithm == "RS256":
        return private_key.sign(data, _RSA_PADDING, _SHA256)
    if algorithm == "ES256":
        # JWS wants the raw r || s, each 32 bytes (RFC 7518 §3.4), not DER.
        r, s = decode_dss_signature(private_key.sign(data, _ECDSA))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return private_key.sign(data)  # EdDSA


def _verify(algorithm: str, public_key, signature: bytes, data: bytes) -> bool:
    try:
        if algorithm == "RS256":
            public_key.verify(signature, data, _RSA_PADDING, _SHA256)
        elif algorithm == "ES256":
            if len(signature) != 64:
                return False
            der = encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            public_key.verify(der, data, _ECDSA)
        else:
            public_key.verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    algorithm: str
    status: str
    public_key: Any
    private_key: Any = None  # only for the active key
    header_b64: bytes = b""


@dataclass
class KeyRing:
    """The published keys of this process, and the active one with its private half."""

    state: tuple
    keys: dict[str, LoadedKey] = field(default_factory=dict)
    active: LoadedKey | None = None

    def sign(self, claims: dict) -> str:
        """A compact JWS over `claims` with the active key; header typ at+jwt (RFC 9068 §2.1)."""
        key = self.active
        payload = b64url(orjson.dumps(claims))
        signing_input = key.header_b64 + b"." + payload
        signature = _sign(key.algorithm, key.private_key, signing_input)
        return (signing_input + b"." + b64url(signature)).decode("ascii")


_ring: KeyRing | None = None
_ring_lock = threading.Lock()
_last_forced_reload = 0.0


# The answer is kept KEY_RECHECK_SECONDS; the ring is rebuilt only when it changes.
# Measured: a cached answer costs ~2 µs per request (key + lock + TTLCache read).
@cached(TTLCache(maxsize=1, ttl=KEY_RECHECK_SECONDS), lock=threading.Lock())
@database_io
def _state() -> tuple:
    """(kid, status) of every published key."""
    return tuple(SigningKey.objects.published().order_by("kid").values_list("kid", "status"))


@database_io
def _load(state: tuple, previous: KeyRing | None) -> KeyRing:
    rows = {row.kid: row for row in SigningKey.objects.published()}
    keys: dict[str, LoadedKey] = {}
    active = None
    for kid, status in state:
        row = rows.get(kid)
        if row is None:
            continue
        old = previous.keys.get(kid) if previous else None
        if status == SigningKey.Status.ACTIVE:
            if old is not None and old.private_key is not None:
                loaded = old
            else:
                # Parsed once per process per key, never per request.
                key = _import(row.algorithm, private_key_decrypt(row.private_key_encrypted))
                private = key.private_key
                header = {"alg": row.algorithm, "typ": "at+jwt", "kid": kid}
                loaded = LoadedKey(
                    kid=kid,
                    algorithm=row.algorithm,
                    status=status,
                    public_key=private.public_key(),
                    private_key=private,
                    header_b64=b64url(json.dumps(header, separators=(",", ":")).encode()),
                )
            active = loaded
        elif old is not None:
            loaded = LoadedKey(kid, old.algorithm, status, old.public_key)
        else:
            public = _public_from_jwk(row.algorithm, row.public_jwk)
            loaded = LoadedKey(kid, row.algorithm, status, public)
        keys[kid] = loaded
    return KeyRing(state=state, keys=keys, active=active)


def _public_from_jwk(algorithm: str, jwk: dict):
    cls = {"RS256": RSAKey, "ES256": ECKey, "EdDSA": OKPKey}[algorithm]
    return cls.import_key(jwk).public_key


def key_ring(*, force: bool = False) -> KeyRing:
    """The process's key ring, as the database published it at most KEY_RECHECK_SECONDS ago.

    1. The published (kid, status) pairs: the cached answer, or (stale, `force`) a query.
    2. The ring was built from the same pairs → the ring.
    3. Changed (a rotation) → rebuild, reusing already parsed keys.
    4. No active key at all → create one (first use) and load again.
    """
    global _ring
    if force:
        _state.cache_clear()
    state = _state()
    ring = _ring
    if ring is not None and ring.state == state:
        return ring
    with _ring_lock:
        if not any(status == SigningKey.Status.ACTIVE for _kid, status in state):
            signing_key_ensure_active()
            _state.cache_clear()
            state = _state()
        ring = _ring
        if ring is None or ring.state != state:
            ring = _ring = _load(state, ring)
        return ring


def key_ring_for_kid(kid: str) -> LoadedKey | None:
    """The published key `kid`; an unknown kid reloads the ring at most every few seconds."""
    global _last_forced_reload
    ring = key_ring()
    key = ring.keys.get(kid)
    if key is not None:
        return key
    now = time.monotonic()
    if now - _last_forced_reload < KEY_RECHECK_SECONDS:
        return None
    _last_forced_reload = now
    return key_ring(force=True).keys.get(kid)


def key_ring_reset() -> None:
    """Forget the cached ring (tests, and after a rotation in this process)."""
    global _ring, _last_forced_reload
    _state.cache_clear()
    _ring = None
    _last_forced_reload = 0.0
    with _verified_lock:
        _verified.clear()


# Resource servers introspect the same token on every call they serve. A signature that
# verified once stays valid for that exact string, so its claims are remembered (per
# process, bounded) and the check is repeated only while the key is still published.
# Only successes are kept: a tampered token is another string, and an unknown kid may
# become known after a key-ring reload. The lock: every read reorders the LRU, and views
# run on several threads under a threaded server.
VERIFIED_CACHE_SIZE = 4096
_verified: LRUCache[str, tuple[str, dict]] = LRUCache(maxsize=VERIFIED_CACHE_SIZE)
_verified_lock = threading.Lock()


def jwt_verify(token: str) -> dict | None:
    """Claims of a well-formed at+jwt signed by one of our published keys, else None.

    Checks structure, `typ`, that `alg` is the key's own algorithm (no algorithm confusion)
    and the signature. Time, issuer and denylist checks are the caller's.
    """
    if not isinstance(token, str):
        return None
    with _verified_lock:
        remembered = _verified.get(token)
    if remembered is not None:
        kid, claims = remembered
        if key_ring_for_kid(kid) is not None:
            return claims
        with _verified_lock:
            _verified.pop(token, None)
    verified = _jwt_verify_signature(token)
    if verified is None:
        return None
    with _verified_lock:
        _verified[token] = verified
    return verified[1]


def _jwt_verify_signature(token: str) -> tuple[str, dict] | None:
    """(kid, claims) when the signature checks out."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        return None
    header_b64, payload_b64, signature_b64 = token.split(".")
    try:
        header = json.loads(b64url_decode(header_b64))
        if not isinstance(header, dict) or header.get("typ") not in ACCESS_TOKEN_TYPES:
            return None
        kid = header.get("kid")
        if not isinstance(kid, str):
            return None
        key = key_ring_for_kid(kid)
        if key is None or header.get("alg") != key.algorithm:
            return None
        signing_input = (header_b64 + "." + payload_b64).encode("ascii")
        if not _verify(key.algorithm, key.public_key, b64url_decode(signature_b64), signing_input):
            return None
        claims = json.loads(b64url_decode(payload_b64))
    except (ValueError, binascii.Error, UnicodeError, RecursionError):
        return None
    return (kid, claims) if isinstance(claims, dict) else None


# --- Rotation schedule (read side of the Keys page) -----------------------------------------


@dataclass(frozen=True)
class KeySchedule:
    """Where the signing keys stand in the rotation schedule (issue 4, req. 8)."""

    interval_days: int
    active: SigningKey | None
    next: SigningKey | None
    retired: list[SigningKey]
    rotation_due_at: datetime | None  # the active key is old enough
    next_rotation_at: datetime | None  # due and the next key published long enough
    manual_rotation_allowed: bool  # a rotation now needs no force


def key_schedule(now: datetime | None = None) -> KeySchedule:
    now = now or timezone.now()
    days = settings.KEYWARD_SIGNING_KEY_ROTATION_DAYS
    keys = list(SigningKey.objects.published(now))
    active = next((k for k in keys if k.status == SigningKey.Status.ACTIVE), None)
    upcoming = next((k for k in keys if k.status == SigningKey.Status.NEXT), None)
    retired = [k for k in keys if k.status == SigningKey.Status.RETIRED]
    due_at = active.rotation_due_at(timedelta(days=days)) if active and days > 0 else None
    # Without a next key the daily run publishes one first; its lead time starts then.
    promotable_at = upcoming.promotable_at() if upcoming else now + NEXT_KEY_PUBLISH_LEAD
    return KeySchedule(
        interval_days=days,
        active=active,
        next=upcoming,
        retired=retired,
        rotation_due_at=due_at,
        next_rotation_at=max(due_at, promotable_at) if due_at else None,
        manual_rotation_allowed=active is None or promotable_at <= now,
    )
