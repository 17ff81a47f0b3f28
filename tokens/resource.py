"""Resource-server kit: protect the views of your own Django service with Keyward tokens.

Copy this file into your project (it needs Django, joserfc and cachetools), then::

    from .resource import require_scopes

    @require_scopes("orders:read")
    def order_list(request):
        client_id = request.access_token_claims["client_id"]
        ...

Offline mode (the default) verifies the JWT access token (RFC 9068) against the issuer's
JWKS, fetched over HTTP and cached in-process; introspection mode asks the issuer
(RFC 7662) and caches the answer. Failures are answered as RFC 6750 §3 says. Defaults come
from settings: KEYWARD_ISSUER, KEYWARD_DEFAULT_AUDIENCE, and for introspection
KEYWARD_INTROSPECTION_CLIENT_ID / KEYWARD_INTROSPECTION_CLIENT_SECRET. See docs/events.md.

Optional, off by default: the usage report (KEYWARD_USAGE_REPORT = True and an ingestion
token in KEYWARD_USAGE_REPORT_TOKEN). Each request a decorated view lets through counts,
in memory, for (hour, the token's client_id, each scope the view required); a background
thread posts the counts to the issuer's /analytics/api/usage every
KEYWARD_USAGE_REPORT_INTERVAL seconds, or sooner once KEYWARD_USAGE_REPORT_MAX_ENTRIES
keys wait. A request never waits for it; an unreachable issuer costs a warning and that
batch. The issuer's scope review shows it as "last exercised". See docs/token-service.md.
"""

from __future__ import annotations

import atexit
import base64
import functools
import hashlib
import http.client
import json
import logging
import math
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterable

from cachetools import TLRUCache
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse
from joserfc import jws
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import KeySet

logger = logging.getLogger(__name__)

# What the token service can sign with; never "none", never HMAC (no shared secrets).
DEFAULT_ALGORITHMS = ("RS256", "ES256", "EdDSA", "Ed25519")
# Clock skew tolerated on exp, nbf and iat.
DEFAULT_LEEWAY_SECONDS = 30
# An unknown kid triggers a JWKS refetch at most this often (a forged kid must not turn
# every request into a fetch).
JWKS_MIN_REFETCH_SECONDS = 60
# Even with only known kids, the JWKS is refetched this often, so removed keys stop working.
JWKS_MAX_AGE_SECONDS = 300
# After a failed JWKS fetch (issuer down), the next attempt waits this long.
JWKS_RETRY_SECONDS = 5
# Introspection answers are cached at most this long (and never past the token's exp).
INTROSPECTION_CACHE_SECONDS = 60
INTROSPECTION_CACHE_SIZE = 10_000
HTTP_TIMEOUT_SECONDS = 5
MAX_TOKEN_LENGTH = 8192
MAX_RESPONSE_BYTES = 1 << 20
ACCESS_TOKEN_TYPES = {"at+jwt", "application/at+jwt"}  # RFC 9068 §4

# The wall clock; a module attribute so tests can move it.
clock = time.time

# The token service may sign with EdDSA; joserfc warns on every use of that name (RFC 9864).
warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)


class BearerError(Exception):
    """A failed check, answered per RFC 6750 §3 (or 503 when the issuer is unreachable)."""

    def __init__(self, status: int, error: str | None, description: str, scope: str = ""):
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.scope = scope

    def response(self, realm: str) -> HttpResponse:
        params = [f'realm="{_quotable(realm)}"']
        if self.error and self.status in (400, 401, 403):
            params.append(f'error="{self.error}"')
            params.append(f'error_description="{_quotable(self.description)}"')
        if self.scope:
            params.append(f'scope="{_quotable(self.scope)}"')
        response = JsonResponse(
            {"error": self.error or "unauthorized", "error_description": self.description},
            status=self.status,
        )
        if self.status == 503:
            response["Retry-After"] = "5"
        else:
            response["WWW-Authenticate"] = "Bearer " + ", ".join(params)
        response["Cache-Control"] = "no-store"
        return response


def _quotable(text: str) -> str:
    # RFC 6750 §3: no '"' or '\' and only printable ASCII inside the quoted values.
    return re.sub(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]", "?", text)[:200]


def _invalid(description: str) -> BearerError:
    return BearerError(401, "invalid_token", description)


def _unavailable(description: str) -> BearerError:
    return BearerError(503, "temporarily_unavailable", description)


def bearer_token(request: HttpRequest) -> str:
    """The token of `Authorization: Bearer <token>` (RFC 6750 §2.1, the only method we take)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header or scheme.lower() != "bearer":
        # No credentials at all: a bare challenge without error code (RFC 6750 §3.1).
        raise BearerError(401, None, "A Bearer access token is required.")
    token = token.strip()
    if not re.fullmatch(r"[A-Za-z0-9\-._~+/]+=*", token):
        raise BearerError(400, "invalid_request", "Malformed Authorization header.")
    if len(token) > MAX_TOKEN_LENGTH:
        raise _invalid("The access token is too long.")
    return token


def _http(url: str, data: bytes | None = None, headers: dict | None = None) -> dict:
    """GET (or POST `data`) and parse a JSON object; raises OSError or ValueError."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {url}")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url, data=data, headers={"Accept": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:  # noqa: S310
            body = json.loads(response.read(MAX_RESPONSE_BYTES))
    except http.client.HTTPException as exc:  # e.g. IncompleteRead, which is not an OSError
        raise OSError(str(exc)) from exc
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    return body


class JWKSCache:
    """The issuer's public keys by kid. Fetched on first use and again after max_age; on an
    unknown kid refetched at most once per min_refetch seconds; after a failed fetch
    retried no sooner than retry_after seconds, serving the keys it has. Thread-safe.

    Not a cachetools cache: one document that must outlive its max_age while the issuer is
    down, and a refetch schedule with three clocks, which a TTL cache cannot express. A
    lookup is a lock and three comparisons (~0.5 µs measured).
    """

    def __init__(
        self,
        fetch: Callable[[], dict],
        *,
        min_refetch: float = JWKS_MIN_REFETCH_SECONDS,
        max_age: float = JWKS_MAX_AGE_SECONDS,
        retry_after: float = JWKS_RETRY_SECONDS,
    ):
        self.fetch = fetch
        self.min_refetch = min_refetch
        self.max_age = max_age
        self.retry_after = retry_after
        self.fetched_at: float | None = None
        self.attempted_at: float | None = None
        self.keys: dict = {}
        self._lock = threading.Lock()

    def key(self, kid: str):
        with self._lock:
            now = clock()
            since_attempt = math.inf if self.attempted_at is None else now - self.attempted_at
            stale = self.fetched_at is None or now - self.fetched_at >= self.max_age
            if (stale and since_attempt >= self.retry_after) or (
                kid not in self.keys and since_attempt >= self.min_refetch
            ):
                self._refresh(now)
            if self.fetched_at is None:
                raise _unavailable("The issuer's keys are unavailable.")
            return self.keys.get(kid)

    def _refresh(self, now: float) -> None:
        self.attempted_at = now
        try:
            document = self.fetch()
            jwks = document["keys"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("resource kit: JWKS fetch failed (%s)", exc)
            return
        keys = {}
        for jwk in jwks if isinstance(jwks, list) else []:
            try:
                keys[jwk["kid"]] = KeySet.import_key_set({"keys": [jwk]}).keys[0]
            except (JoseError, KeyError, TypeError, ValueError) as exc:
                logger.warning("resource kit: ignoring unusable JWK %.100r (%s)", jwk, exc)
        self.keys = keys
        self.fetched_at = now


_jwks_caches: dict = {}
_jwks_caches_lock = threading.Lock()


def jwks_cache_for(source, min_refetch: float = JWKS_MIN_REFETCH_SECONDS) -> JWKSCache:
    """One cache per JWKS URL or provider callable, shared by every decorated view.
    Looked up per request, so clearing `_jwks_caches` (tests) forgets every key."""
    cache = _jwks_caches.get(source)
    if cache is not None:
        return cache
    with _jwks_caches_lock:
        cache = _jwks_caches.get(source)
        if cache is None:
            fetch = source if callable(source) else functools.partial(_http, source)
            cache = _jwks_caches[source] = JWKSCache(fetch, min_refetch=min_refetch)
        return cache


class OfflineValidator:
    """Verifies a JWT access token against the JWKS and checks its claims (RFC 9068 §4)."""

    def __init__(self, *, issuer, audience, jwks_source, jwks_min_refetch, algorithms, leeway):
        self.issuer = issuer
        self.audience = audience
        self.jwks_source = jwks_source
        self.jwks_min_refetch = jwks_min_refetch
        self.algorithms = tuple(algorithms)
        # One registry per accepted algorithm, each admitting only that one: a token is
        # verified with exactly the algorithm its header names, after that was checked.
        self.registries = {alg: jws.JWSRegistry(algorithms=[alg]) for alg in self.algorithms}
        self.leeway = leeway

    def validate(self, token: str) -> dict:
        if token.count(".") != 2:
            raise _invalid("The access token is not a signed JWT.")
        try:
            signed = jws.extract_compact(token.encode())
        except (JoseError, ValueError, TypeError) as exc:  # Also bad base64 and bad UTF-8.
            raise _invalid("The access token is not a JWT.") from exc
        header = signed.headers()
        if not isinstance(header, dict):
            raise _invalid("The access token is not a JWT.")
        if not is_access_token_type(header.get("typ")):
            raise _invalid("The token is not a JWT access token (typ must be at+jwt).")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.registries:
            raise _invalid(f"Signing algorithm {str(alg)[:20]} is not accepted.")
        kid = header.get("kid")
        jwks = jwks_cache_for(self.jwks_source, self.jwks_min_refetch)
        key = jwks.key(kid) if isinstance(kid, str) else None
        if key is None:
            raise _invalid("The token was signed with an unknown key.")
        if key.get("alg") not in (None, alg):
            raise _invalid("The token's algorithm does not match its key.")
        try:
            valid = jws.validate_compact(signed, key, registry=self.registries[alg])
        except (JoseError, ValueError, TypeError) as exc:
            raise _invalid("The access token signature is invalid.") from exc
        if not valid:
            raise _invalid("The access token signature is invalid.")
        try:
            claims = json.loads(signed.payload)
        except (ValueError, RecursionError) as exc:
            raise _invalid("The access token is not a JWT.") from exc
        if not isinstance(claims, dict):
            raise _invalid("The access token is not a JWT.")
        self.check_claims(claims)
        return claims

    def check_claims(self, claims: dict) -> None:
        now = clock()
        if claims.get("iss") != self.issuer:
            raise _invalid("The token was issued by another issuer.")
        audiences = claims.get("aud")
        audiences = [audiences] if isinstance(audiences, str) else audiences
        if not isinstance(audiences, list) or self.audience not in audiences:
            raise _invalid("The token is not meant for this audience.")
        exp = claims.get("exp")
        if not _is_number(exp):
            raise _invalid("The token has no expiry.")
        if now >= exp + self.leeway:
            raise _invalid("The access token expired.")
        problem = premature(claims, now=now, leeway=self.leeway)
        if problem:
            raise _invalid(problem)


def is_access_token_type(typ) -> bool:
    """Is `typ` the header of a JWT access token (RFC 9068 §2.1)?

    Case-insensitive, as media types are (RFC 7515 §4.1.9, RFC 8725 §3.11); with or without
    the "application/" prefix. The issuer's own introspection applies the same rule.
    """
    return isinstance(typ, str) and typ.lower() in ACCESS_TOKEN_TYPES


def premature(claims: dict, *, now: float, leeway: float) -> str | None:
    """Why a token is not valid yet, or None: `nbf` or `iat` later than now + leeway, or
    not a number. The issuer's introspection refuses the same tokens, with the same leeway."""
    nbf, iat = claims.get("nbf"), claims.get("iat")
    if nbf is not None and (not _is_number(nbf) or nbf > now + leeway):
        return "The access token is not valid yet."
    if iat is not None and (not _is_number(iat) or iat > now + leeway):
        return "The access token was issued in the future."
    return None


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class IntrospectionValidator:
    """Asks the issuer's introspection endpoint (RFC 7662) and caches the answer by token
    hash, for at most max_age seconds and never past the token's exp."""

    def __init__(
        self,
        *,
        url: str,
        authorization: str,
        issuer: str,
        audience: str,
        max_age,
        provider: Callable[[str], dict] | None = None,
    ):
        self.url = url
        self.authorization = authorization
        self.provider = provider
        self.issuer = issuer
        self.audience = audience
        self.max_age = max_age
        # SHA-256 of the token → the answer; the lock because every read reorders the LRU.
        self.cache: TLRUCache[str, dict] = TLRUCache(
            maxsize=INTROSPECTION_CACHE_SIZE, ttu=self._expires_at, timer=lambda: clock()
        )
        self._lock = threading.Lock()

    def validate(self, token: str) -> dict:
        now = clock()
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            answer = self.cache.get(digest)
        if answer is None:
            answer = self._introspect(token)
            with self._lock:
                self.cache[digest] = answer
        if answer.get("active") is not True:
            raise _invalid("The access token is not active.")
        exp = answer.get("exp")
        if _is_number(exp) and now >= exp:
            raise _invalid("The access token expired.")
        if "iss" in answer and answer["iss"] != self.issuer:
            raise _invalid("The token was issued by another issuer.")
        audiences = answer.get("aud")
        audiences = [audiences] if isinstance(audiences, str) else audiences
        if audiences is not None and self.audience not in (audiences or []):
            raise _invalid("The token is not meant for this audience.")
        return answer

    def _introspect(self, token: str) -> dict:
        if self.provider is not None:
            return self.provider(token)
        body = urllib.parse.urlencode({"token": token, "token_type_hint": "access_token"})
        try:
            return _http(
                self.url,
                data=body.encode(),
                headers={
                    "Authorization": self.authorization,
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
        except (OSError, ValueError) as exc:
            # Includes HTTPError: a 401 here means *our* credentials are wrong, not the token.
            logger.warning("resource kit: introspection failed (%s)", exc)
            raise _unavailable("The token could not be checked; try again.") from exc

    def _expires_at(self, _digest: str, answer: dict, now: float) -> float:
        """At most max_age from now, and never past an active token's exp (then not kept)."""
        exp = answer.get("exp")
        if answer.get("active") is True and _is_number(exp):
            return min(now + self.max_age, exp)
        return now + self.max_age


def basic_authorization(client_id: str, client_secret: str) -> str:
    """client_secret_basic (RFC 6749 §2.3.1: both parts form-urlencoded first)."""
    pair = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(client_secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def token_scopes(claims: dict) -> set[str]:
    scope = claims.get("scope")
    return set(scope.split()) if isinstance(scope, str) else set()


def _setting(name: str, given):
    value = given if given is not None else getattr(settings, name, None)
    if not value:
        raise ImproperlyConfigured(f"require_scopes needs {name} (setting or argument)")
    return value


def build_validator(
    *,
    mode: str,
    issuer: str | None,
    audience: str | None,
    jwks_url: str | None,
    jwks_provider: Callable[[], dict] | None,
    jwks_min_refetch: float,
    introspection_url: str | None,
    introspection_auth,
    introspection_provider: Callable[[str], dict] | None = None,
    algorithms: Iterable[str],
    leeway: float,
    introspection_cache_seconds: float,
):
    issuer = _setting("KEYWARD_ISSUER", issuer).rstrip("/")
    audience = _setting("KEYWARD_DEFAULT_AUDIENCE", audience)
    if mode == "offline":
        source = jwks_provider or jwks_url or issuer + "/.well-known/jwks.json"
        return OfflineValidator(
            issuer=issuer,
            audience=audience,
            jwks_source=source,
            jwks_min_refetch=jwks_min_refetch,
            algorithms=algorithms,
            leeway=leeway,
        )
    if mode == "introspect":
        if introspection_provider is not None:
            introspection_auth = ""  # asked in-process: no credentials to present
        elif introspection_auth is None:
            introspection_auth = (
                _setting("KEYWARD_INTROSPECTION_CLIENT_ID", None),
                _setting("KEYWARD_INTROSPECTION_CLIENT_SECRET", None),
            )
        authorization = (
            introspection_auth
            if isinstance(introspection_auth, str)
            else basic_authorization(*introspection_auth)
        )
        return IntrospectionValidator(
            url=introspection_url or issuer + "/token-srv/introspect",
            authorization=authorization,
            issuer=issuer,
            audience=audience,
            max_age=introspection_cache_seconds,
            provider=introspection_provider,
        )
    raise ImproperlyConfigured(f"require_scopes mode must be offline or introspect, not {mode}")


def require_scopes(
    *scopes: str,
    issuer: str | None = None,
    audience: str | None = None,
    jwks_url: str | None = None,
    jwks_provider: Callable[[], dict] | None = None,
    jwks_min_refetch: float = JWKS_MIN_REFETCH_SECONDS,
    mode: str = "offline",
    introspection_url: str | None = None,
    introspection_auth: tuple[str, str] | str | None = None,
    introspection_provider: Callable[[str], dict] | None = None,
    introspection_cache_seconds: float = INTROSPECTION_CACHE_SECONDS,
    algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
    leeway: float = DEFAULT_LEEWAY_SECONDS,
    realm: str = "api",
):
    """View decorator: the request must carry a valid access token holding every scope.

    On success the view runs with `request.access_token_claims` (the JWT claims, or the
    introspection answer). Otherwise, per RFC 6750 §3: no token → 401 with a bare
    `WWW-Authenticate: Bearer realm=…`; malformed header → 400 invalid_request; bad,
    expired or foreign token → 401 invalid_token; missing scope → 403 insufficient_scope.
    `introspection_auth` is (client_id, client_secret) or a ready Authorization value;
    `introspection_provider`, a callable token → answer, replaces the HTTP call (an issuer
    in the same process, or tests), as `jwks_provider` does for the JWKS.
    """
    required = " ".join(scopes)
    options = dict(
        mode=mode,
        issuer=issuer,
        audience=audience,
        jwks_url=jwks_url,
        jwks_provider=jwks_provider,
        jwks_min_refetch=jwks_min_refetch,
        introspection_url=introspection_url,
        introspection_auth=introspection_auth,
        introspection_provider=introspection_provider,
        algorithms=algorithms,
        leeway=leeway,
        introspection_cache_seconds=introspection_cache_seconds,
    )

    def decorator(view):
        # Built on first request, so settings are read after startup; then kept, so a
        # request reads no setting.
        validator = reporter = None

        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            nonlocal validator, reporter
            if validator is None:
                reporter = usage_reporter() if scopes else None
                validator = build_validator(**options)
            try:
                claims = validator.validate(bearer_token(request))
                if not set(scopes) <= token_scopes(claims):
                    raise BearerError(
                        403, "insufficient_scope", "The token lacks a required scope.", required
                    )
            except BearerError as exc:
                return exc.response(realm)
            request.access_token_claims = claims
            if reporter is not None:
                reporter.record(claims.get("client_id"), scopes)
            return view(request, *args, **kwargs)

        # Bearer tokens are not ambient credentials, so CSRF does not apply.
        wrapped.csrf_exempt = True
        return wrapped

    return decorator


# --- Usage report (optional) ---------------------------------------------------------------

USAGE_REPORT_INTERVAL_SECONDS = 60
USAGE_REPORT_MAX_ENTRIES = 1000
# Keys kept while the issuer is slow or a send is under way; beyond, counts are dropped
# (with a warning) rather than letting memory grow without bound.
USAGE_REPORT_MAX_PENDING = 20 * USAGE_REPORT_MAX_ENTRIES


class UsageReporter:
    """Counts checked (client_id, scope) pairs per hour and posts them in batches.

    `record` is the hot path: one lock and a dict update per required scope (2.8 µs
    measured on a machine at load 8 on 2 cores, where an empty `with lock:` took 0.7 µs).
    A daemon thread, started on first use in each process (so a forking server's workers
    each get one), sends a batch every `interval` seconds, or at once when `max_entries`
    keys are waiting. A failed send is logged and its batch dropped: the report is evidence
    for a review, not a ledger, and a resource server must not queue up for an absent
    issuer. Each batch carries a new batch_id, which the issuer stores once.
    """

    def __init__(
        self,
        *,
        url: str,
        token: str,
        resource: str = "",
        interval: float = USAGE_REPORT_INTERVAL_SECONDS,
        max_entries: int = USAGE_REPORT_MAX_ENTRIES,
    ):
        self.url = url
        self.token = token
        self.resource = resource
        self.interval = interval
        self.max_entries = max_entries
        self.max_pending = max(max_entries, USAGE_REPORT_MAX_PENDING)
        self.dropped = 0  # counts dropped since the last warning
        self._counts: Counter = Counter()
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._wake = threading.Event()
        self._started = False
        # A forked child (a pre-forking server's worker) has no sending thread, and may
        # have inherited a lock held at the fork: it starts afresh.
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self._counts = Counter()
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._wake = threading.Event()
        self._started = False

    def record(self, client_id, scopes: Iterable[str]) -> None:
        if not isinstance(client_id, str) or not client_id:
            return
        hour = int(clock() // 3600 * 3600)
        with self._lock:
            if not self._started:
                self._start()
            for scope in scopes:
                key = (hour, client_id, scope)
                counts = self._counts
                if key in counts or len(counts) < self.max_pending:
                    counts[key] = counts.get(key, 0) + 1
                else:
                    self.dropped += 1
            full = len(self._counts) >= self.max_entries
        if full:
            self._wake.set()

    def _start(self) -> None:
        """The sending thread of this process (called under the lock)."""
        self._started = True
        thread = threading.Thread(target=self._run, name="keyward-usage-report", daemon=True)
        thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            self.flush()

    def flush(self) -> bool:
        """Send what has been counted, in batches of max_entries; False if a batch could not
        be sent (then it and the rest are dropped: the issuer is unreachable or refusing)."""
        with self._send_lock:
            with self._lock:
                counts, self._counts = self._counts, Counter()
                dropped, self.dropped = self.dropped, 0
            if dropped:
                logger.warning("resource kit: usage report over its limit, %d dropped", dropped)
            items = list(counts.items())
            for start in range(0, len(items), self.max_entries):
                try:
                    self._send(items[start : start + self.max_entries])
                except (OSError, ValueError) as exc:
                    # Never the token: HTTPError's text is the status line only.
                    logger.warning(
                        "resource kit: usage report of %d entries dropped (%s)",
                        len(items) - start,
                        exc,
                    )
                    return False
            return True

    def _send(self, batch: list) -> None:
        body = {
            "batch_id": str(uuid.uuid4()),
            "entries": [
                {"client_id": client_id, "scope": scope, "hour": hour, "count": n}
                for (hour, client_id, scope), n in batch
            ],
        }
        if self.resource:
            body["resource"] = self.resource
        _http(
            self.url,
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )


_reporter: tuple[tuple, UsageReporter] | None = None
_reporter_lock = threading.Lock()


def usage_reporter() -> UsageReporter | None:
    """The process's reporter while KEYWARD_USAGE_REPORT is on, else None. Rebuilt when
    its settings change."""
    global _reporter
    if not getattr(settings, "KEYWARD_USAGE_REPORT", False):
        return None
    config = (
        getattr(settings, "KEYWARD_USAGE_REPORT_URL", None),
        getattr(settings, "KEYWARD_USAGE_REPORT_TOKEN", None),
        getattr(settings, "KEYWARD_USAGE_REPORT_RESOURCE", ""),
        getattr(settings, "KEYWARD_USAGE_REPORT_INTERVAL", USAGE_REPORT_INTERVAL_SECONDS),
        getattr(settings, "KEYWARD_USAGE_REPORT_MAX_ENTRIES", USAGE_REPORT_MAX_ENTRIES),
    )
    current = _reporter
    if current is not None and current[0] == config:
        return current[1]
    with _reporter_lock:
        if _reporter is None or _reporter[0] != config:
            _reporter = (config, _usage_reporter_build(*config))
        return _reporter[1]


def _usage_reporter_build(url, token, resource, interval, max_entries) -> UsageReporter:
    if not token:
        raise ImproperlyConfigured("KEYWARD_USAGE_REPORT needs KEYWARD_USAGE_REPORT_TOKEN")
    url = url or _setting("KEYWARD_ISSUER", None).rstrip("/") + "/analytics/api/usage"
    reporter = UsageReporter(
        url=url, token=token, resource=resource, interval=interval, max_entries=max_entries
    )
    # What was counted since the last send goes out when the process exits normally.
    atexit.register(reporter.flush)
    return reporter
