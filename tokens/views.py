from __future__ import annotations

import functools
import logging
import time
import uuid

import orjson
from authlib.consts import default_json_headers
from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    OAuth2Error,
)
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from audit.events import Endpoint, Outcome, Reason, TokenEventRecord, client_id_redacted
from audit.services import Actor
from base.conf import setting
from base.http import client_ip
from base.roles import Role, role_required

from . import services
from .client_cache import client_lookup
from .keys import jwt_verify, key_ring, key_schedule
from .models import JWKS_CACHE_SECONDS, NEXT_KEY_PUBLISH_LEAD, SigningKey
from .protocol import (
    REALM,
    ClientAuthenticationFailed,
    client_authenticate,
    credentials_extract,
    form_parse,
)
from .resource import DEFAULT_LEEWAY_SECONDS, premature
from .server import access_token_response, new_jti, token_request_validate
from .sink import denylist_contains, emit

log = logging.getLogger(__name__)

REASON_BY_ERROR = {
    "invalid_request": Reason.INVALID_REQUEST,
    "invalid_client": Reason.INVALID_CLIENT,
    "invalid_scope": Reason.INVALID_SCOPE,
    "unsupported_grant_type": Reason.UNSUPPORTED_GRANT_TYPE,
    "unauthorized_client": Reason.UNAUTHORIZED,
    "invalid_grant": Reason.UNAUTHORIZED,
}
# 429 body: a registered OAuth error code meaning "try again later" (RFC 6749 §4.1.2.1),
# which client libraries treat as retryable; Retry-After says when.
RATE_LIMITED_BODY = {
    "error": "temporarily_unavailable",
    "error_description": "Rate limit exceeded; retry after the Retry-After interval.",
}
NO_STORE = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]


# --- Responses and events -----------------------------------------------------------------


def _json(status: int, body, headers=()) -> HttpResponse:
    response = HttpResponse(orjson.dumps(body), status=status, content_type="application/json")
    for name, value in headers:
        if name != "Content-Type":
            response[name] = value
    # Every request is already recorded as a token event; Django's "Bad Request: …" log
    # line per 4xx would only double the cost of a brute-force attempt.
    response._has_been_logged = True
    return response


def _event(endpoint: str, request: HttpRequest, ip: str | None) -> TokenEventRecord:
    """The event of this request as a failed one; the endpoint fills in what it learns."""
    return TokenEventRecord(
        id=uuid.uuid4().hex,
        occurred_at=time.time(),
        endpoint=endpoint,
        outcome=Outcome.FAILURE,
        reason=Reason.INVALID_REQUEST,
        source_ip=ip,
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
        status_code=400,
    )


def _presented_client_id(request: HttpRequest, form: dict | None) -> str:
    """Best-effort client_id for a request that failed before authentication."""
    try:
        credentials = credentials_extract(request, form or {})
    except OAuth2Error as error:
        return getattr(error, "client_id", "") or (form or {}).get("client_id", "")[:200]
    if credentials is not None:
        return credentials.client_id[:200]
    return (form or {}).get("client_id", "")[:200]


def _finish_error(
    error: OAuth2Error,
    event: TokenEventRecord,
    request: HttpRequest,
    ip,
    started: float,
    form=None,
) -> HttpResponse:
    """Emit the failure event (counting it against the IP) and answer with the error."""
    status, body, headers = error()
    auth_failed = isinstance(error, ClientAuthenticationFailed)
    if auth_failed:
        event.client_id = error.client_id
        event.client_known = error.known
        event.secret_id = error.secret_id
        event.reason = error.reason
    else:
        if not event.client_id:
            event.client_id = _presented_client_id(request, form)
        event.reason = REASON_BY_ERROR.get(error.error, Reason.INVALID_REQUEST)
    # Before authentication the client_id is whatever was presented: never log a secret.
    event.client_id = client_id_redacted(event.client_id)
    event.status_code = status
    counters = [("ip", str(ip), setting("KEYWARD_RATE_LIMIT_PER_IP"))]
    verdict = _emit(event, started, ip=ip, counters=counters, auth_failed=auth_failed)
    if verdict.limited:
        return _rate_limited(verdict.retry_after)
    return _json(status, body, headers)


def _emit(event: TokenEventRecord, started: float, **kwargs):
    event.duration_ms = round((time.perf_counter() - started) * 1000, 3)
    return emit(event, **kwargs)


def _client_counters(client_id: str, ip) -> list[tuple[str, str, int]]:
    """The limits an authenticated request counts against: its client and its address."""
    return [
        ("client", client_id, setting("KEYWARD_RATE_LIMIT_PER_CLIENT")),
        ("ip", str(ip), setting("KEYWARD_RATE_LIMIT_PER_IP")),
    ]


def _rate_limited(retry_after: int) -> HttpResponse:
    return _json(429, RATE_LIMITED_BODY, [*NO_STORE, ("Retry-After", str(retry_after))])


def _method_not_allowed(endpoint: str, request: HttpRequest) -> HttpResponse:
    started = time.perf_counter()
    ip = client_ip(request)
    event = _event(endpoint, request, ip)
    error = InvalidRequestError("Use POST.", status_code=405)
    response = _finish_error(error, event, request, ip, started)
    if response.status_code == 405:
        response["Allow"] = "POST"
    return response


def server_error(request: HttpRequest, endpoint: str) -> HttpResponse:
    """The answer when an endpoint failed unexpectedly: RFC 6749-style JSON and an event."""
    started = time.perf_counter()
    ip = client_ip(request)
    event = _event(endpoint, request, ip)
    event.reason = Reason.SERVER_ERROR
    event.status_code = 500
    try:
        _emit(event, started, ip=ip, counters=[])
    except Exception:  # the sink's own fallbacks failed too; the answer still goes out
        log.exception("could not record the server_error event")
    body = {"error": "server_error", "error_description": "Try again later."}
    return _json(500, body, NO_STORE)


# --- Token endpoint (RFC 6749 §4.4, RFC 9068) ---------------------------------------------


@csrf_exempt
def token(request: HttpRequest) -> HttpResponse:
    """POST /token-srv/token: client credentials in, a JWT access token out.

    1. Parse the form, authenticate the client and check scopes (tokens.server).
    2. One step counts the request against the limits and records the event.
    3. Only then sign: a rate-limited request costs no signature.
    """
    if request.method != "POST":
        return _method_not_allowed(Endpoint.TOKEN, request)
    started = time.perf_counter()
    ip = client_ip(request)
    event = _event(Endpoint.TOKEN, request, ip)
    form = None
    try:
        form = form_parse(request)
        event.scopes_requested = form.get("scope", "")[:1000]
        grant = token_request_validate(request, form, ip)
    except OAuth2Error as error:
        return _finish_error(error, event, request, ip, started, form)
    client = grant.client
    jti = new_jti()
    event.client_id = client.client_id
    event.client_known = True
    event.secret_id = grant.authenticated.secret_id
    event.outcome = Outcome.SUCCESS
    event.reason = Reason.OK
    event.scopes_granted = grant.scope
    event.jti = jti
    event.status_code = 200
    verdict = _emit(event, started, ip=ip, counters=_client_counters(client.client_id, ip))
    if verdict.limited:
        return _rate_limited(verdict.retry_after)
    return _json(200, access_token_response(grant, jti), NO_STORE)


# --- Introspection (RFC 7662) -------------------------------------------------------------


class _BearerRefused(OAuth2Error):
    error = "invalid_token"
    status_code = 401
    description = "The bearer token is not valid."

    def get_headers(self):
        challenge = f'Bearer realm="{REALM}", error="invalid_token"'
        return [*default_json_headers, ("WWW-Authenticate", challenge)]


def _token_claims_if_valid(token: str) -> dict | None:
    """Claims of a signature-valid, unexpired token of ours whose client is active."""
    claims = jwt_verify(token)
    if claims is None or claims.get("iss") != settings.KEYWARD_ISSUER:
        return None
    now = time.time()
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool) or exp <= now:
        return None
    # A token from the future (nbf, iat) is refused as the resource-server kit refuses it:
    # the kit's default leeway for clock skew, no more.
    if premature(claims, now=now, leeway=DEFAULT_LEEWAY_SECONDS):
        return None
    client_id = claims.get("client_id")
    if not isinstance(client_id, str) or not isinstance(claims.get("jti"), str):
        return None
    client = client_lookup(client_id)
    if client is None or not client.is_active():
        return None
    return claims


def _introspection_caller(request: HttpRequest, form: dict, ip) -> tuple[str, bool, int | None]:
    """(client_id, may introspect any token, secret_id) of the caller, or an OAuth2Error."""
    credentials = credentials_extract(request, form)
    if credentials is not None:
        authenticated = client_authenticate(credentials, ip)
        client = authenticated.client
        return client.client_id, client.can_introspect, authenticated.secret_id
    authorization = request.META.get("HTTP_AUTHORIZATION", "")
    if authorization[:7].lower() != "bearer ":
        raise ClientAuthenticationFailed(Reason.INVALID_CLIENT)
    claims = _token_claims_if_valid(authorization[7:].strip())
    if claims is None or denylist_contains(claims["jti"]):
        error = _BearerRefused()
        error.reason = Reason.INVALID_CLIENT
        raise error
    client = client_lookup(claims["client_id"])
    if not client.ip_allowed(ip) or client.ip_denied(ip):
        error = _BearerRefused()
        error.reason = Reason.IP_NOT_ALLOWED
        raise error
    return client.client_id, client.can_introspect, None


@csrf_exempt
def introspect(request: HttpRequest) -> HttpResponse:
    """POST /token-srv/introspect: is this token active, and what does it carry?

    Callers: client credentials (basic or post) or `Authorization: Bearer <own token>`.
    Without the introspection permission a caller sees only its own client's tokens.
    """
    if request.method != "POST":
        return _method_not_allowed(Endpoint.INTROSPECT, request)
    started = time.perf_counter()
    ip = client_ip(request)
    event = _event(Endpoint.INTROSPECT, request, ip)
    form = None
    try:
        form = form_parse(request)
        caller_id, may_see_all, secret_id = _introspection_caller(request, form, ip)
        token_value = form.get("token")
        if not token_value:
            event.client_id, event.client_known, event.secret_id = caller_id, True, secret_id
            raise InvalidRequestError("Missing token.")
    except _BearerRefused as error:
        return _bearer_refused(error, event, request, ip, started)
    except OAuth2Error as error:
        return _finish_error(error, event, request, ip, started, form)
    claims = _token_claims_if_valid(token_value)
    permitted = claims is not None and (may_see_all or claims["client_id"] == caller_id)
    answered = claims is None or permitted
    event.client_id, event.client_known, event.secret_id = caller_id, True, secret_id
    event.outcome = Outcome.SUCCESS if answered else Outcome.FAILURE
    event.reason = Reason.OK if answered else Reason.UNAUTHORIZED
    event.jti = claims["jti"][:64] if claims else ""
    event.scopes_granted = str(claims.get("scope", ""))[:1000] if permitted else ""
    # Evidence for the scope review: which client's scopes a resource server checked
    # (client_id is the caller). A plain attribute write; the rollup does the rest.
    event.subject_client_id = claims["client_id"][:200] if permitted else ""
    event.status_code = 200
    verdict = _emit(
        event,
        started,
        ip=ip,
        counters=_introspection_counters(caller_id, found=claims is not None),
        denylist_jti=claims["jti"] if permitted else "",
    )
    if verdict.limited:
        return _rate_limited(verdict.retry_after)
    if not permitted or verdict.denylisted:
        return _json(200, {"active": False}, NO_STORE)
    return _json(200, _active_answer(claims), NO_STORE)


def _active_answer(claims: dict) -> dict:
    body = {"active": True, "token_type": "Bearer"}
    for claim in ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti"):
        if claim in claims:
            body[claim] = claims[claim]
    return body


def introspection_answer(token: str) -> dict:
    """What the introspection endpoint answers a caller allowed to see every token, without
    the HTTP round trip, caller authentication, rate limit or event: for a resource server in
    this same process (the demo at /api/), where an HTTP call to ourselves could wait on the
    very thread that is making it."""
    claims = _token_claims_if_valid(token)
    if claims is None or denylist_contains(claims["jti"]):
        return {"active": False}
    return _active_answer(claims)


def _introspection_counters(caller_id: str, *, found: bool) -> list[tuple[str, str, int]]:
    """Every call counts against the caller's limit; a token that is not ours or not valid
    also counts against a much smaller one, which stops token fishing without slowing
    resource servers that introspect real tokens."""
    counters = [("introspect", caller_id, settings.KEYWARD_RATE_LIMIT_INTROSPECT_PER_CALLER)]
    if not found:
        limit = settings.KEYWARD_RATE_LIMIT_INTROSPECT_INACTIVE_PER_CALLER
        counters.append(("introspect-inactive", caller_id, limit))
    return counters


def _bearer_refused(error: _BearerRefused, event, request, ip, started) -> HttpResponse:
    status, body, headers = error()
    event.reason = error.reason
    event.status_code = status
    counters = [("ip", str(ip), setting("KEYWARD_RATE_LIMIT_PER_IP"))]
    verdict = _emit(event, started, ip=ip, counters=counters, auth_failed=True)
    if verdict.limited:
        return _rate_limited(verdict.retry_after)
    return _json(status, body, headers)


# --- Revocation (RFC 7009) ----------------------------------------------------------------


@csrf_exempt
def revoke(request: HttpRequest) -> HttpResponse:
    """POST /token-srv/revoke: a client revokes one of its own access tokens.

    Unknown, garbage and already expired tokens answer 200 (RFC 7009 §2.2). A token of
    another client is refused with 400 invalid_grant, RFC 6749 §5.2's code for a grant
    "issued to another client" (authlib's RevocationEndpoint answers the same).
    """
    if request.method != "POST":
        return _method_not_allowed(Endpoint.REVOKE, request)
    started = time.perf_counter()
    ip = client_ip(request)
    event = _event(Endpoint.REVOKE, request, ip)
    form = None
    try:
        form = form_parse(request)
        credentials = credentials_extract(request, form)
        if credentials is None:
            raise ClientAuthenticationFailed(Reason.INVALID_CLIENT)
        authenticated = client_authenticate(credentials, ip)
        client = authenticated.client
        event.client_id = client.client_id
        event.client_known = True
        event.secret_id = authenticated.secret_id
        token_value = form.get("token")
        if not token_value:
            raise InvalidRequestError("Missing token.")
        claims = jwt_verify(token_value)
        if claims is not None and claims.get("client_id") != client.client_id:
            event.jti = str(claims.get("jti", ""))[:64]
            raise InvalidGrantError("The token was issued to another client.")
    except OAuth2Error as error:
        return _finish_error(error, event, request, ip, started, form)
    exp = claims.get("exp") if claims else None
    jti = claims.get("jti") if claims else None
    revocable = isinstance(jti, str) and isinstance(exp, int) and exp > time.time()
    event.outcome = Outcome.SUCCESS
    event.reason = Reason.OK
    event.jti = jti[:64] if revocable else ""
    event.status_code = 200
    verdict = _emit(event, started, ip=ip, counters=_client_counters(client.client_id, ip))
    if verdict.limited:
        return _rate_limited(verdict.retry_after)
    if revocable:
        services.access_token_revoke(jti=jti, client_id=client.client_id, exp=exp)
    return _json(200, {}, NO_STORE)


# --- Keys and discovery -------------------------------------------------------------------


@require_GET
def jwks(request: HttpRequest) -> HttpResponse:
    """GET /.well-known/jwks.json: next, active and recently retired public keys."""
    key_ring()  # creates the first key on a fresh install
    keys = [row.public_jwk for row in SigningKey.objects.published().order_by("-created_at")]
    return HttpResponse(
        orjson.dumps({"keys": keys}),
        content_type="application/json",
        headers={"Cache-Control": f"public, max-age={JWKS_CACHE_SECONDS}"},
    )


@require_GET
def metadata(request: HttpRequest) -> HttpResponse:
    """GET /.well-known/oauth-authorization-server (RFC 8414 §2)."""
    return HttpResponse(
        _metadata_body(settings.KEYWARD_ISSUER),
        content_type="application/json",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@functools.lru_cache(maxsize=2)
def _metadata_body(issuer: str) -> bytes:
    """Settings and routes only: one document per issuer for the process's whole life."""
    auth_methods = ["client_secret_basic", "client_secret_post"]
    algorithms = list(SigningKey.Algorithm.values)
    return orjson.dumps(
        {
            "issuer": issuer,
            "token_endpoint": issuer + reverse("tokens:token"),
            "introspection_endpoint": issuer + reverse("tokens:introspect"),
            "revocation_endpoint": issuer + reverse("tokens:revoke"),
            "jwks_uri": issuer + reverse("tokens:jwks"),
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": auth_methods,
            # Bearer callers (RFC 7662 §2.1 allows any authorization) are not a registered
            # client authentication method, so only the registered ones are listed.
            "introspection_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint_auth_methods_supported": auth_methods,
            # RFC 9068 §2.1: the algorithms access tokens may be signed with.
            "access_token_signing_alg_values_supported": algorithms,
        }
    )


# --- Keys page ----------------------------------------------------------------------------


@role_required(Role.ADMIN)
@require_GET
def key_list(request: HttpRequest) -> HttpResponse:
    keys = list(SigningKey.objects.all())
    return render(
        request,
        "tokens/keys.html",
        {
            "keys": keys,
            "algorithms": SigningKey.Algorithm.choices,
            "schedule": key_schedule(),
            "lead_seconds": int(NEXT_KEY_PUBLISH_LEAD.total_seconds()),
        },
    )


@role_required(Role.ADMIN)
@require_POST
def key_rotate(request: HttpRequest) -> HttpResponse:
    """Rotate now. Before the next key's lead time only with the explicit confirmation."""
    algorithm = request.POST.get("algorithm") or settings.KEYWARD_SIGNING_ALGORITHM
    if algorithm not in SigningKey.Algorithm.values:
        messages.error(request, "Unknown algorithm.")
        return redirect("tokens:keys")
    force = request.POST.get("force") == "accept-cache-miss"
    try:
        result = services.signing_key_rotate(
            actor=Actor.from_request(request), algorithm=algorithm, force=force
        )
    except services.RotationTooEarly as refused:
        messages.error(request, str(refused))
        return redirect("tokens:keys")
    forced = " (forced before the next key's lead time)" if result.forced else ""
    messages.success(
        request,
        f"Rotated{forced}: {result.active.kid} now signs; {result.next.kid} ({algorithm}) is next.",
    )
    return redirect("tokens:keys")
