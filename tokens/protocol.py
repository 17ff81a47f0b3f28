"""Request parsing and client authentication shared by the token, introspection and
revocation endpoints. Everything here turns bad input into an OAuth error, never a 500."""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote_plus

from authlib.consts import default_json_headers
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError
from django.http import HttpRequest

from audit.events import Reason
from clients.secrets import secret_hash

from .client_cache import ClientRecord, SecretRecord, client_lookup, client_lookup_reloaded

MAX_BODY_BYTES = 8192
MAX_FIELDS = 32
MAX_SECRET_LENGTH = 512
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
REALM = "keyward"


class ClientAuthenticationFailed(InvalidClientError):
    """401 invalid_client with one fixed body, whatever was wrong (RFC 6749 §5.2).

    The real reason travels in `reason`, for the token event only.
    """

    status_code = 401
    description = "Client authentication failed."

    def __init__(self, reason: str, *, client_id: str = "", known: bool = False, secret_id=None):
        super().__init__()
        self.reason = reason
        self.client_id = client_id
        self.known = known
        self.secret_id = secret_id

    def get_headers(self):
        # RFC 7235 §3.1: a 401 carries a challenge; Basic is the scheme we accept.
        return [*default_json_headers, ("WWW-Authenticate", f'Basic realm="{REALM}"')]


@dataclass(frozen=True)
class Credentials:
    client_id: str
    secret: str
    method: str  # client_secret_basic | client_secret_post


@dataclass(frozen=True)
class Authenticated:
    client: ClientRecord
    secret_id: int
    method: str


def form_parse(request: HttpRequest) -> dict[str, str]:
    """The form body of a POST as a dict, or InvalidRequestError.

    1. Content type must be application/x-www-form-urlencoded (charset, if any, UTF-8).
    2. Body at most MAX_BODY_BYTES, by Content-Length before anything is read.
    3. Strict UTF-8, also after percent-decoding; no NUL characters (PostgreSQL refuses them).
    4. No parameter more than once (RFC 6749 §3.1, §3.2).
    """
    content_type = request.META.get("CONTENT_TYPE", "")
    mime, _, params = content_type.partition(";")
    if mime.strip().lower() != FORM_CONTENT_TYPE:
        raise InvalidRequestError(f"Content-Type must be {FORM_CONTENT_TYPE}.")
    charset = params.strip().lower()
    if charset and charset.replace(" ", "") not in ("charset=utf-8", 'charset="utf-8"'):
        raise InvalidRequestError("The body must be UTF-8.")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise InvalidRequestError("Invalid Content-Length.") from None
    if length > MAX_BODY_BYTES or length < 0:
        raise InvalidRequestError(f"The body must not exceed {MAX_BODY_BYTES} bytes.")
    try:
        # The stream, not `request.body`: the limit above is far below Django's
        # DATA_UPLOAD_MAX_MEMORY_SIZE, and `.body` re-reads that setting six times and copies
        # the body into a buffer (~25k instructions, a fiftieth of a token). One byte past
        # the limit tells an oversize body, also a chunked one without Content-Length.
        body = request.read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            raise InvalidRequestError(f"The body must not exceed {MAX_BODY_BYTES} bytes.")
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (ValueError, OSError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidRequestError("Malformed request body.") from exc
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:
            # Never echo input in error_description: RFC 6749 restricts its characters.
            raise InvalidRequestError("A parameter is repeated.")
        if "\x00" in key or "\x00" in value:
            raise InvalidRequestError("Malformed request body.")
        form[key] = value
    return form


def _basic_credentials(header: str) -> Credentials:
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        raw_id, sep, raw_secret = decoded.partition(":")
        # RFC 6749 §2.3.1: both parts are form-urlencoded before Base64.
        client_id = unquote_plus(raw_id, errors="strict")
        secret = unquote_plus(raw_secret, errors="strict")
    except (binascii.Error, ValueError):
        raise ClientAuthenticationFailed(Reason.INVALID_CLIENT) from None
    if not sep or not client_id or not secret or "\x00" in client_id + secret:
        raise ClientAuthenticationFailed(Reason.INVALID_CLIENT, client_id=client_id[:200])
    return Credentials(client_id, secret, "client_secret_basic")


def credentials_extract(request: HttpRequest, form: dict[str, str]) -> Credentials | None:
    """Basic or post credentials; both at once is invalid_request (RFC 6749 §2.3).

    Returns None when the request carries neither (the caller may accept a Bearer token).
    """
    authorization = request.META.get("HTTP_AUTHORIZATION", "")
    has_post = "client_secret" in form
    if authorization[:6].lower() == "basic ":
        if has_post:
            raise InvalidRequestError("Use one client authentication method, not several.")
        credentials = _basic_credentials(authorization)
        if "client_id" in form and form["client_id"] != credentials.client_id:
            raise InvalidRequestError("client_id in the body differs from the Basic credentials.")
        return credentials
    if has_post:
        if authorization:
            raise InvalidRequestError("Use one client authentication method, not several.")
        client_id = form.get("client_id", "")
        if not client_id or not form["client_secret"]:
            raise ClientAuthenticationFailed(Reason.INVALID_CLIENT, client_id=client_id[:200])
        return Credentials(client_id, form["client_secret"], "client_secret_post")
    return None


def _secret_match(client: ClientRecord, presented: str) -> SecretRecord | None:
    """Compare with every stored secret in constant time (no early exit on a match)."""
    matched = None
    for record in client.secrets:
        if hmac.compare_digest(presented, record.secret_hash):
            matched = record
    return matched


def client_authenticate(credentials: Credentials, ip: str | None) -> Authenticated:
    """Check presented credentials; raise ClientAuthenticationFailed with the real reason.

    1. Unknown client_id → unknown_client.
    2. The HMAC of the secret is compared in constant time with every stored secret, valid
       or not, so a match on a revoked or expired one can be told apart from a wrong one.
    3. Then the client's status, then its allowed networks.
    """
    client_id = credentials.client_id
    client = client_lookup(client_id)
    if client is None:
        raise ClientAuthenticationFailed(Reason.UNKNOWN_CLIENT, client_id=client_id[:200])
    fail = {"client_id": client_id, "known": True}
    secret = credentials.secret
    if len(secret) > MAX_SECRET_LENGTH:
        raise ClientAuthenticationFailed(Reason.BAD_SECRET, **fail)
    presented = secret_hash(secret)
    matched = _secret_match(client, presented)
    if matched is None:
        # Perhaps a secret newer than our cached copy (rotated in another process).
        client = client_lookup_reloaded(client_id) or client
        matched = _secret_match(client, presented)
    if matched is None:
        raise ClientAuthenticationFailed(Reason.BAD_SECRET, **fail)
    fail["secret_id"] = matched.secret_id
    if matched.is_revoked():
        raise ClientAuthenticationFailed(Reason.REVOKED_SECRET, **fail)
    if matched.is_expired(time.time()):
        raise ClientAuthenticationFailed(Reason.EXPIRED_SECRET, **fail)
    if not client.is_active():
        raise ClientAuthenticationFailed(Reason.DISABLED_CLIENT, **fail)
    if not client.ip_allowed(ip) or client.ip_denied(ip):
        # A blocked network reads as outside the allowlist: the caller learns nothing more.
        raise ClientAuthenticationFailed(Reason.IP_NOT_ALLOWED, **fail)
    return Authenticated(client=client, secret_id=matched.secret_id, method=credentials.method)
