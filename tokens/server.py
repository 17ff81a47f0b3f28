"""The client credentials grant (RFC 6749 §4.4) and the access token it issues (RFC 9068).

Our own few lines, not authlib's `AuthorizationServer`: its Django server wraps each request
in a `DjangoOAuth2Request` (absolute URI building, GET+POST merging, and an https check that
fails on the http:// URI a TLS-terminating proxy hands us) and authenticates clients through
hooks we would override anyway (ours never tell "unknown client" from "wrong secret"). Using
it meant subclassing the server and building its request object behind `__init__`'s back.
The grant itself is three rules, below; authlib still serialises the §5.2 errors. Measured
with a warm client cache, signature aside: authlib's request object and grant dispatch took
~18 µs per token against ~13 µs for `token_request_validate` (which includes the client
lookup and the secret's HMAC), so the simpler path is also the faster one.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from authlib.oauth2.rfc6749.errors import (
    InvalidRequestError,
    InvalidScopeError,
    UnsupportedGrantTypeError,
)
from django.http import HttpRequest

from base.conf import setting

from .client_cache import ClientRecord
from .keys import key_ring
from .protocol import (
    Authenticated,
    ClientAuthenticationFailed,
    Reason,
    client_authenticate,
    credentials_extract,
)

GRANT_TYPE = "client_credentials"


@dataclass(frozen=True)
class TokenGrant:
    """A token request that passed every check: who asked, and for which scope."""

    authenticated: Authenticated
    scope: str  # space-separated (RFC 6749 §3.3)

    @property
    def client(self) -> ClientRecord:
        return self.authenticated.client


def scopes_parse(value: str) -> list[str]:
    """Scope tokens (RFC 6749 §3.3), deduplicated, in request order."""
    seen: dict[str, None] = {}
    for name in value.split():
        seen.setdefault(name, None)
    return list(seen)


def granted_scope(client: ClientRecord, requested: str | None) -> str:
    """Requested ⊆ granted, else invalid_scope; no (or an empty) scope → all granted."""
    if requested is None or not requested.strip():
        return " ".join(sorted(client.scopes))
    names = scopes_parse(requested)
    if not client.scopes.issuperset(names):
        raise InvalidScopeError("The requested scope exceeds the scopes granted.")
    return " ".join(names)


def token_request_validate(request: HttpRequest, form: dict[str, str], ip) -> TokenGrant:
    """Check a parsed token request (RFC 6749 §4.4.2) or raise its §5.2 error.

    1. grant_type is present (invalid_request) and client_credentials, the only grant we
       serve (unsupported_grant_type), before anything is looked up.
    2. The client authenticates with basic or post credentials (invalid_client, one body
       for every failure; the real reason travels on the exception for the event).
    3. The requested scope is within the client's grants (invalid_scope).
    """
    grant_type = form.get("grant_type")
    if not grant_type:
        raise InvalidRequestError("Missing grant_type.")
    if grant_type != GRANT_TYPE:
        raise UnsupportedGrantTypeError(grant_type)
    credentials = credentials_extract(request, form)
    if credentials is None:
        raise ClientAuthenticationFailed(Reason.INVALID_CLIENT)
    authenticated = client_authenticate(credentials, ip)
    return TokenGrant(authenticated, granted_scope(authenticated.client, form.get("scope")))


def access_token_response(grant: TokenGrant, jti: str) -> dict:
    """The RFC 9068 JWT and the RFC 6749 §5.1 response body. No refresh token."""
    client = grant.client
    now = int(time.time())
    claims = {
        "iss": setting("KEYWARD_ISSUER"),
        "sub": client.client_id,
        "aud": client.audience_claim(),
        "exp": now + client.lifetime,
        "iat": now,
        "jti": jti,
        "client_id": client.client_id,
        "scope": grant.scope,
    }
    return {
        "access_token": key_ring().sign(claims),
        "token_type": "Bearer",
        "expires_in": client.lifetime,
        "scope": grant.scope,
    }


def new_jti() -> str:
    return secrets.token_urlsafe(16)
