"""The demo resource server under /api/, protected by the resource kit in its two modes.

- GET /api/protected-resource: offline validation (the kit's default), the JWT checked
  against the JWKS. Fast and needs no call to the issuer, but it cannot see a revocation:
  a revoked token is accepted until it expires, and the answer says so.
- GET /api/protected-resource/online: introspection (RFC 7662), the issuer asked on every
  request, so a revoked token or a disabled client is refused at once.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from base.display import datetime_text

from .resource import require_scopes
from .views import introspection_answer

GREETING = "Hello from a resource protected by Keyward."


def local_jwks() -> dict:
    """The JWKS this deployment publishes, read from the database.

    The demo runs in the same process as the issuer; fetching its own JWKS over HTTP would
    deadlock a single-threaded development server.
    """
    from .models import SigningKey

    try:
        return {"keys": [key.public_jwk for key in SigningKey.objects.published()]}
    except DatabaseError as exc:
        # Before the signing-key migration has run: no keys, every token is refused.
        raise OSError(f"signing keys unavailable: {exc}") from exc


def _expiry(claims: dict) -> str:
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        return "it expires"
    left = max(0, int(exp - time.time()))
    return f"it expires ({datetime_text(datetime.fromtimestamp(exp, UTC))}, in {left} s)"


# A local JWKS read is cheap, so a freshly rotated key is picked up within 5 s, not 60.
@require_GET
@require_scopes("demo:read", jwks_provider=local_jwks, jwks_min_refetch=5)
def protected_resource(request: HttpRequest) -> JsonResponse:
    claims = request.access_token_claims
    online = request.build_absolute_uri(reverse("protected-resource-online"))
    return JsonResponse(
        {
            "message": GREETING,
            "client_id": claims.get("client_id"),
            "scope": claims.get("scope"),
            "validation": {
                "mode": "offline",
                "checked": "The token's signature against the issuer's published keys "
                "(JWKS, cached here) and its claims (issuer, audience, expiry, scope). "
                "The issuer was not asked.",
                "caveat": "Offline validation cannot see a revocation: a revoked token, or "
                f"one of a disabled client, is still accepted here until {_expiry(claims)}. "
                "Short token lifetimes bound that window; where it matters, use "
                "introspection.",
                "online_mode": online,
            },
        }
    )


# The demo caches no introspection answer (the kit's default keeps one up to 60 s), so a
# revocation shows on the very next request.
@require_GET
@require_scopes(
    "demo:read",
    mode="introspect",
    introspection_provider=introspection_answer,
    introspection_cache_seconds=0,
)
def protected_resource_online(request: HttpRequest) -> JsonResponse:
    claims = request.access_token_claims
    offline = request.build_absolute_uri(reverse("protected-resource"))
    return JsonResponse(
        {
            "message": GREETING,
            "client_id": claims.get("client_id"),
            "scope": claims.get("scope"),
            "validation": {
                "mode": "introspection",
                "checked": "The issuer was asked whether the token is active (RFC 7662 "
                "introspection), so a revoked token or a disabled client is refused at once.",
                "cost": "One call to the issuer per request (the resource kit caches answers "
                "for up to 60 s by default; this demo caches none). Offline validation needs "
                "no call.",
                "offline_mode": offline,
            },
        }
    )
