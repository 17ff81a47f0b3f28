"""The demo resource server: GET /api/protected-resource, protected by the resource kit."""

from __future__ import annotations

from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from .resource import require_scopes


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


# A local JWKS read is cheap, so a freshly rotated key is picked up within 5 s, not 60.
@require_GET
@require_scopes("demo:read", jwks_provider=local_jwks, jwks_min_refetch=5)
def protected_resource(request: HttpRequest) -> JsonResponse:
    claims = request.access_token_claims
    return JsonResponse(
        {
            "message": "Hello from a resource protected by Keyward.",
            "client_id": claims.get("client_id"),
            "scope": claims.get("scope"),
        }
    )
