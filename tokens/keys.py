"""Signing keys: generation, encryption at rest, the per-process key ring, JWT sign and verify.

joserfc does all of the JOSE work through its public API: it generates and serialises the
keys (PEM, public JWK, RFC 7638 thumbprint), signs (`jws.serialize_compact`) and verifies
(`jws.extract_compact` + `jws.validate_compact`). Each published key is imported once per
process with its `alg`, `kid` and `use` pinned, beside a `JWSRegistry` that admits that one
algorithm, so a token can only verify with the algorithm its kid was created for.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson
from cachetools import LRUCache, TTLCache, cached
from cryptography.fernet import Fernet
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from joserfc import jws
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey
from joserfc.jws import JWSAlgModel
from joserfc.util import urlsafe_b64encode

from base.crypto import fernet_for

from .models import NEXT_KEY_PUBLISH_LEAD, SigningKey
from .resource import is_access_token_type

log = logging.getLogger(__name__)

ALGORITHMS = tuple(SigningKey.Algorithm.values)
# How long a process trusts its answer to "which keys are published" (a one-line query).
KEY_RECHECK_SECONDS = 5.0
# Longest token we try to verify; anything longer is garbage.
MAX_TOKEN_LENGTH = 8192
KEY_TYPES = {"RS256": RSAKey, "ES256": ECKey, "EdDSA": OKPKey}

# We sign with "EdDSA" (RFC 8037's name, the one every verifier knows); joserfc warns on
# each use of that name since RFC 9864 deprecated it.
warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)


# --- Encryption at rest -------------------------------------------------------------------


def _fernet(secret: str) -> Fernet:
    return fernet_for(secret, b"keyward signing keys v1")


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


# --- Compact JWS (RFC 7515) through joserfc ---------------------------------------------


@dataclass(frozen=True)
class LoadedKey:
    """A published key, parsed once per process and pinned to its algorithm."""

    kid: str
    algorithm: str
    status: str
    jwk: Key  # the private key for the active key, else the public one
    registry: jws.JWSRegistry  # admits `algorithm` only
    header: dict  # what this key signs with: typ at+jwt (RFC 9068 §2.1)
    signer: JWSAlgModel  # the registry's model of `algorithm`
    # BASE64URL(protected header) as joserfc serialises it, for a private key; else b"".
    header_segment: bytes = b""

    @classmethod
    def imported(cls, *, kid: str, algorithm: str, status: str, data) -> LoadedKey:
        """Import a PEM or JWK with alg, kid and use fixed, so joserfc refuses other uses."""
        parameters = {"alg": algorithm, "kid": kid, "use": "sig"}
        jwk = KEY_TYPES[algorithm].import_key(data, parameters)
        registry = jws.JWSRegistry(algorithms=[algorithm])
        header = {"alg": algorithm, "typ": "at+jwt", "kid": kid}
        segment = b""
        if jwk.is_private:
            # joserfc checks the header against the registry and the key against the
            # algorithm here, once; the first segment of what it signs is the header's
            # encoding, which every token of this key repeats.
            segment = jws.serialize_compact(header, b"", jwk, registry=registry).split(".")[0]
        return cls(
            kid=kid,
            algorithm=algorithm,
            status=status,
            jwk=jwk,
            registry=registry,
            header=header,
            signer=registry.get_alg(algorithm),
            header_segment=segment.encode() if segment else b"",
        )


@dataclass
class KeyRing:
    """The published keys of this process, and the active one with its private half."""

    state: tuple
    keys: dict[str, LoadedKey] = field(default_factory=dict)
    active: LoadedKey | None = None

    def sign(self, claims: dict) -> str:
        """A compact JWS (RFC 7515 §7.1) over `claims` with the active key.

        The signature is joserfc's: the registry's algorithm model signs with the imported
        key. What `jws.serialize_compact` would add per token is already done once per key
        in `LoadedKey.imported`: checking the protected header against the registry and the
        key against the algorithm, and encoding the header (it takes the header as a dict
        only, and encodes it with the standard library's json). Doing that once saves ~100k
        of ~450k instructions per ES256 token and the same per RS256 token (callgrind; the
        signature itself is ~310k for ES256). tests/tokens/test_keys.py checks that the
        result is byte for byte what `jws.serialize_compact` produces.
        """
        key = self.active
        signing_input = key.header_segment + b"." + urlsafe_b64encode(orjson.dumps(claims))
        signature = key.signer.sign(signing_input, key.jwk)
        return (signing_input + b"." + urlsafe_b64encode(signature)).decode("ascii")


_ring: KeyRing | None = None
_ring_lock = threading.Lock()
_last_forced_reload = 0.0


# The answer is kept KEY_RECHECK_SECONDS; the ring is rebuilt only when it changes.
# Measured: a cached answer costs ~2 µs per request (key + lock + TTLCache read).
@cached(TTLCache(maxsize=1, ttl=KEY_RECHECK_SECONDS), lock=threading.Lock())
def _state() -> tuple:
    """(kid, status) of every published key."""
    return tuple(SigningKey.objects.published().order_by("kid").values_list("kid", "status"))


def _load(state: tuple, previous: KeyRing | None) -> KeyRing:
    rows = {row.kid: row for row in SigningKey.objects.published()}
    keys: dict[str, LoadedKey] = {}
    active = None
    for kid, status in state:
        row = rows.get(kid)
        if row is None:
            continue
        old = previous.keys.get(kid) if previous else None
        active_now = status == SigningKey.Status.ACTIVE
        if old is not None and old.jwk.is_private == active_now:
            loaded = dataclasses.replace(old, status=status)
        else:
            # Parsed once per process per key and role, never per request; only the active
            # key keeps its private half.
            data = private_key_decrypt(row.private_key_encrypted) if active_now else row.public_jwk
            loaded = LoadedKey.imported(kid=kid, algorithm=row.algorithm, status=status, data=data)
        if active_now:
            active = loaded
        keys[kid] = loaded
    return KeyRing(state=state, keys=keys, active=active)


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
    """(kid, claims) when the signature checks out.

    1. joserfc splits the token and decodes the header (and the size limits apply).
    2. typ must be at+jwt (any case, as the resource-server kit accepts it); kid must name
       one of our published keys.
    3. joserfc verifies with that key and the key's registry, which admits the key's own
       algorithm only: "none", HMAC keyed with a public key, or any other alg is refused.
    """
    if len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        signed = jws.extract_compact(token.encode())
        header = signed.headers()
        if not isinstance(header, dict) or not is_access_token_type(header.get("typ")):
            return None
        kid = header.get("kid")
        key = key_ring_for_kid(kid) if isinstance(kid, str) else None
        if key is None or not jws.validate_compact(signed, key.jwk, registry=key.registry):
            return None
        claims = orjson.loads(signed.payload)
    except (JoseError, ValueError, TypeError, UnicodeError, RecursionError):
        return None
    return (kid, claims) if isinstance(claims, dict) else None


# --- Rotation schedule (read side of the Keys page) -----------------------------------------


@dataclass(frozen=True)
class KeySchedule:
    """Where the signing keys stand in the rotation schedule."""

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
