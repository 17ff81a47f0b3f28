"""The authorization server: authlib's grant and error classes on a thin server subclass.

authlib's Django `AuthorizationServer` wraps every request in a `DjangoOAuth2Request`
(absolute URI building, GET+POST merging, a transport check that fails behind a TLS proxy)
and authenticates clients with a registry that tells "unknown client" from "wrong secret".
This subclass keeps authlib's grant dispatch, `ClientCredentialsGrant` validation and error
serialisation, and swaps in our own parsed request, client authentication and JWT issuing.
"""

from __future__ import annotations

import secrets
import time

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from authlib.oauth2.rfc6749.hooks import hooked
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload, OAuth2Request
from django.conf import settings

from .client_cache import ClientRecord
from .keys import key_ring
from .protocol import (
    Authenticated,
    ClientAuthenticationFailed,
    Reason,
    client_authenticate,
    credentials_extract,
)


class TokenRequest(OAuth2Request):
    """An OAuth2Request over a form we already parsed and validated (tokens.protocol)."""

    def __init__(self, django_request, form: dict[str, str], ip: str | None):
        # OAuth2Request.__init__ is skipped on purpose: its InsecureTransportError check
        # rejects the http:// URI a TLS-terminating proxy hands us.
        self.method = django_request.method
        self.uri = ""
        self._body = None
        self.payload = BasicOAuth2Payload(form)
        self.client = None
        self.auth_method = None
        self.user = None
        self.authorization_code = None
        self.refresh_token = None
        self.credential = None
        self._scope = None
        self.django_request = django_request
        self.form_data = form
        self.ip = ip
        self.authenticated: Authenticated | None = None
        self.jti = ""

    @property
    def headers(self):
        # Lazy: building Django's HttpHeaders parses every header (~20 µs) and the grant
        # never reads it on the hot path.
        return self.django_request.headers

    @property
    def form(self):
        return self.form_data

    @property
    def args(self):
        return {}


def scopes_parse(value: str) -> list[str]:
    """Scope tokens (RFC 6749 §3.3), deduplicated, in request order."""
    seen: dict[str, None] = {}
    for name in value.split():
        seen.setdefault(name, None)
    return list(seen)


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def validate_requested_scope(self):
        """Requested ⊆ granted, else invalid_scope; no (or an empty) scope → all granted."""
        client: ClientRecord = self.request.client
        requested = self.request.payload.scope
        if requested is None or not requested.strip():
            self.request.scope = " ".join(sorted(client.scopes))
            return
        names = scopes_parse(requested)
        if not client.scopes.issuperset(names):
            raise InvalidScopeError("The requested scope exceeds the scopes granted.")
        self.request.scope = " ".join(names)

    @hooked
    def create_token_response(self):
        token = self.server.access_token_issue(self.request)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class TokenServer(AuthorizationServer):
    def __init__(self):
        super().__init__()
        self.register_grant(ClientCredentialsGrant)

    def create_oauth2_request(self, request) -> TokenRequest:
        return request  # views build the TokenRequest themselves

    def query_client(self, client_id):  # pragma: no cover - we authenticate ourselves
        raise NotImplementedError

    def authenticate_client(self, request: TokenRequest, methods, endpoint="token"):
        """One path for every failure, so unknown client and wrong secret look the same."""
        credentials = credentials_extract(request.django_request, request.form_data)
        if credentials is None:
            raise ClientAuthenticationFailed(Reason.INVALID_CLIENT)
        request.authenticated = client_authenticate(credentials, request.ip)
        request.auth_method = credentials.method
        return request.authenticated.client

    def send_signal(self, name, *args, **kwargs) -> None:
        pass  # nobody listens; authlib calls it after client authentication

    def handle_response(self, status, body, headers):
        return status, body, headers

    def access_token_issue(self, request: TokenRequest) -> dict:
        """The RFC 9068 JWT and the RFC 6749 §5.1 response body. No refresh token."""
        client: ClientRecord = request.client
        now = int(time.time())
        claims = {
            "iss": settings.KEYWARD_ISSUER,
            "sub": client.client_id,
            "aud": client.audience_claim(),
            "exp": now + client.lifetime,
            "iat": now,
            "jti": request.jti or new_jti(),
            "client_id": client.client_id,
            "scope": request.scope,
        }
        return {
            "access_token": key_ring().sign(claims),
            "token_type": "Bearer",
            "expires_in": client.lifetime,
            "scope": request.scope,
        }


def new_jti() -> str:
    return secrets.token_urlsafe(16)


server = TokenServer()
