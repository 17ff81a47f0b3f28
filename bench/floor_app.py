"""The floor: the least a Python client-credentials token endpoint can do, as a WSGI app.

`bin/bench` (`--only floor`) serves it with granian, the way `bin/serve` serves Keyward
(same processes, threads and options), and measures it beside Keyward and oidc-provider.
Per request it does only what no token endpoint can skip:

1. parse the form body (content type, size, `grant_type=client_credentials`);
2. authenticate one client with Basic credentials: `HMAC-SHA256(pepper, secret)` compared in
   constant time with a stored hash, as `tokens.protocol` does against its cached record;
3. grant the requested scope if it is within the client's (all of them when none is asked);
4. sign the claims Keyward signs (RFC 9068: iss, sub, aud, exp, iat, jti, client_id, scope)
   with joserfc and a key imported once, the header encoded once, as `tokens.keys.KeyRing`
   does; answer with the RFC 6749 §5.1 JSON body.

No Django, no database, no Redis: no rate limit, no event, no revocation, no security
headers. Keyward's rate against this one is what its framework and bookkeeping cost; this
one's against oidc-provider is what Python and the server cost. Configured by environment
variables (set by bench/run_token_bench.py): FLOOR_ALG, FLOOR_PRIVATE_KEY (PEM),
FLOOR_CLIENT_ID, FLOOR_SECRET_HASH, FLOOR_PEPPER, FLOOR_SCOPES, FLOOR_ISSUER, FLOOR_AUDIENCE.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import time
from urllib.parse import parse_qsl, unquote_plus

import orjson
from joserfc import jws
from joserfc.jwk import ECKey, RSAKey
from joserfc.util import urlsafe_b64encode

MAX_BODY_BYTES = 8192
LIFETIME = 3600
ALGORITHM = os.environ["FLOOR_ALG"]
KEY = (ECKey if ALGORITHM.startswith("ES") else RSAKey).import_key(
    os.environ["FLOOR_PRIVATE_KEY"], {"alg": ALGORITHM, "kid": "floor", "use": "sig"}
)
REGISTRY = jws.JWSRegistry(algorithms=[ALGORITHM])
SIGNER = REGISTRY.get_alg(ALGORITHM)
# Encoded once, as Keyward's KeyRing does: every token of this key repeats it.
HEADER_SEGMENT = (
    jws.serialize_compact({"alg": ALGORITHM, "typ": "at+jwt", "kid": "floor"}, b"", KEY)
    .split(".")[0]
    .encode()
)
CLIENT_ID = os.environ["FLOOR_CLIENT_ID"]
SECRET_HASH = os.environ["FLOOR_SECRET_HASH"]
PEPPER = os.environ["FLOOR_PEPPER"].encode()
SCOPES = frozenset(os.environ["FLOOR_SCOPES"].split())
ISSUER = os.environ["FLOOR_ISSUER"]
AUDIENCE = os.environ["FLOOR_AUDIENCE"]
JSON = ("Content-Type", "application/json")
NO_STORE = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]


def _error(start_response, status: str, code: str) -> list[bytes]:
    body = orjson.dumps({"error": code})
    start_response(status, [JSON, ("Content-Length", str(len(body))), *NO_STORE])
    return [body]


def _form(environ) -> dict[str, str] | None:
    if environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != (
        "application/x-www-form-urlencoded"
    ):
        return None
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if not 0 < length <= MAX_BODY_BYTES:
        return None
    return dict(parse_qsl(environ["wsgi.input"].read(length).decode(), max_num_fields=32))


def _authenticated(environ) -> bool:
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    if authorization[:6].lower() != "basic ":
        return False
    try:
        decoded = base64.b64decode(authorization[6:], validate=True).decode()
    except (binascii.Error, ValueError):
        return False
    raw_id, _, raw_secret = decoded.partition(":")
    presented = hmac.new(PEPPER, unquote_plus(raw_secret).encode(), hashlib.sha256).hexdigest()
    # Both compared whatever the first says, so the answer time says nothing of which failed.
    secret_ok = hmac.compare_digest(presented, SECRET_HASH)
    return (unquote_plus(raw_id) == CLIENT_ID) & secret_ok


def _sign(claims: dict) -> str:
    signing_input = HEADER_SEGMENT + b"." + urlsafe_b64encode(orjson.dumps(claims))
    signature = SIGNER.sign(signing_input, KEY)
    return (signing_input + b"." + urlsafe_b64encode(signature)).decode("ascii")


def application(environ, start_response):
    if environ["REQUEST_METHOD"] != "POST":
        return _error(start_response, "405 Method Not Allowed", "invalid_request")
    form = _form(environ)
    if form is None or form.get("grant_type") != "client_credentials":
        return _error(start_response, "400 Bad Request", "invalid_request")
    if not _authenticated(environ):
        return _error(start_response, "401 Unauthorized", "invalid_client")
    requested = form.get("scope", "").split()
    if not SCOPES.issuperset(requested):
        return _error(start_response, "400 Bad Request", "invalid_scope")
    scope = " ".join(requested or sorted(SCOPES))
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": CLIENT_ID,
        "aud": AUDIENCE,
        "exp": now + LIFETIME,
        "iat": now,
        "jti": secrets.token_urlsafe(16),
        "client_id": CLIENT_ID,
        "scope": scope,
    }
    body = orjson.dumps(
        {
            "access_token": _sign(claims),
            "token_type": "Bearer",
            "expires_in": LIFETIME,
            "scope": scope,
        }
    )
    start_response("200 OK", [JSON, ("Content-Length", str(len(body))), *NO_STORE])
    return [body]
