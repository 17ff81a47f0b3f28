"""Log ingestion over HTTP, and the admins' ingestion-token pages.

`POST /analytics/api/ingest` is a machine endpoint: authenticated per request by an
ingestion token (a bearer token, not an ambient credential), so it is CSRF-exempt and uses
no session or user. It answers every error as JSON with an `error` code and never with a
500: a database outage is a 503 to retry. docs/events.md documents it for senders.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import tempfile
import zlib
from typing import IO

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from audit.services import Actor
from base.once import form_once, once_put, once_take
from base.roles import Role, role_required

from .formats import FORMATS, SOURCE_NAME_RE
from .ingestion import GZIP_MAGIC, IngestReport, jsonl_lines, log_lines_ingest
from .ingestion_forms import IngestionTokenForm
from .ingestion_tokens import (
    TokenRefused,
    ingestion_token_authenticate,
    ingestion_token_create,
    ingestion_token_revoke,
    source_name_problem,
)
from .models import IngestionToken
from .usage_reports import (
    ReportForbidden,
    ReportInvalid,
    usage_report_parse,
    usage_report_store,
)

logger = logging.getLogger(__name__)

REALM = "keyward-ingest"
# Media types a JSON Lines body may be sent as; application/json for shippers that can only
# say that (Auth0's custom-webhook log stream in JSON Lines format, for one).
CONTENT_TYPES = {
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/json",
}
MAX_LINE_ERRORS = 100  # per-line errors listed in a 400; the rest are counted
_CHUNK = 64 * 1024
_SPOOL_IN_MEMORY = 1024 * 1024  # a bigger body is spooled to a temporary file


def max_body_bytes() -> int:
    return int(getattr(settings, "KEYWARD_INGEST_MAX_BYTES", 10 * 1024 * 1024))


def max_usage_report_bytes() -> int:
    return int(getattr(settings, "KEYWARD_USAGE_REPORT_MAX_BYTES", 1024 * 1024))


def max_decompressed_bytes() -> int:
    return int(getattr(settings, "KEYWARD_INGEST_MAX_DECOMPRESSED_BYTES", 100 * 1024 * 1024))


# --- The ingest endpoint ----------------------------------------------------------------


class _Refused(Exception):  # noqa: N818 - an answer, not a failure of ours
    """An answer other than 202, raised from anywhere in the request's handling."""

    def __init__(self, status: int, error: str, description: str, headers=None) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description
        self.headers = headers or {}

    def response(self) -> JsonResponse:
        body = {"error": self.error, "error_description": self.description}
        response = JsonResponse(body, status=self.status)
        for name, value in self.headers.items():
            response[name] = value
        return response


@csrf_exempt
def ingest(request: HttpRequest) -> HttpResponse:
    """NDJSON in, counts out: 202 when every line was stored or skipped, 400 listing the
    refused lines (the others are stored), 401/403/405/413/415 before anything is read."""
    try:
        if request.method != "POST":
            raise _Refused(405, "method_not_allowed", "Use POST.", {"Allow": "POST"})
        token = _token(request)
        log_format, source = _parameters(request, token)
        _check_content(request)
        with _body_spool(request) as body:
            report = log_lines_ingest(
                lines=jsonl_lines(body),
                log_format=log_format,
                source=source,
                error_cap=MAX_LINE_ERRORS,
            )
    except _Refused as refused:
        return refused.response()
    except DatabaseError:
        logger.exception("log ingestion: database unavailable")
        return _Refused(
            503,
            "temporarily_unavailable",
            "The event store is unavailable; retry later.",
            {"Retry-After": "5"},
        ).response()
    return _report_response(report, log_format, source)


@csrf_exempt
def usage(request: HttpRequest) -> HttpResponse:
    """A resource server's usage report (analytics/usage_reports.py): 202 stored (or a
    batch id already stored: `duplicate`), 400 invalid, 401 no valid ingestion token, 403 a
    reserved resource name, 413 too large, 415 not JSON, 503 database down."""
    try:
        if request.method != "POST":
            raise _Refused(405, "method_not_allowed", "Use POST.", {"Allow": "POST"})
        token = _token(request)
        report = _usage_report(request, token)
        stored = usage_report_store(report=report, token=token)
    except _Refused as refused:
        return refused.response()
    except DatabaseError:
        logger.exception("usage report: database unavailable")
        return _Refused(
            503,
            "temporarily_unavailable",
            "The event store is unavailable; retry later with the same batch_id.",
            {"Retry-After": "5"},
        ).response()
    body = {
        "batch_id": str(report.batch_id),
        "resource": report.resource,
        "entries": len(report.counts),
        "duplicate": not stored,
    }
    return JsonResponse(body, status=202)


def _usage_report(request: HttpRequest, token: IngestionToken):
    if (request.content_type or "").lower() != "application/json":
        raise _Refused(415, "unsupported_media_type", "Send the report as application/json.")
    limit = max_usage_report_bytes()
    too_large = f"A report may be at most {limit} bytes; send smaller batches."
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        raise _Refused(400, "invalid_request", "Content-Length is not a number.") from None
    if length > limit:
        raise _Refused(413, "payload_too_large", too_large)
    body = request.read(limit + 1)
    if len(body) > limit:
        raise _Refused(413, "payload_too_large", too_large)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise _Refused(400, "invalid_request", "The body is not valid JSON.") from None
    try:
        return usage_report_parse(data, default_resource=token.source)
    except ReportForbidden as exc:
        raise _Refused(403, "forbidden", str(exc)) from None
    except ReportInvalid as exc:
        raise _Refused(400, "invalid_request", str(exc)) from None


def _token(request: HttpRequest) -> IngestionToken:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise _Refused(
            401,
            "invalid_token",
            "Send an ingestion token: Authorization: Bearer kwing_…",
            {"WWW-Authenticate": f'Bearer realm="{REALM}"'},
        )
    try:
        return ingestion_token_authenticate(value.strip())
    except TokenRefused as exc:
        challenge = f'Bearer realm="{REALM}", error="invalid_token", error_description="{exc}"'
        raise _Refused(401, "invalid_token", str(exc), {"WWW-Authenticate": challenge}) from None


def _parameters(request: HttpRequest, token: IngestionToken) -> tuple[str, str]:
    log_format = request.GET.get("format", "")
    if log_format not in FORMATS:
        names = ", ".join(sorted(FORMATS))
        raise _Refused(400, "invalid_request", f"?format= must be one of {names}.")
    source = request.GET.get("source") or token.source
    if not SOURCE_NAME_RE.match(source):
        raise _Refused(400, "invalid_request", f"?source=: {source_name_problem(source)}")
    problem = source_name_problem(source)
    if problem:
        raise _Refused(403, "forbidden", problem)
    return log_format, source


def _check_content(request: HttpRequest) -> None:
    if (request.content_type or "").lower() not in CONTENT_TYPES:
        types = ", ".join(sorted(CONTENT_TYPES))
        raise _Refused(415, "unsupported_media_type", f"Send JSON Lines as one of: {types}.")
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in {"identity", "gzip"}:
        raise _Refused(415, "unsupported_media_type", "Content-Encoding may be gzip or none.")
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        raise _Refused(400, "invalid_request", "Content-Length is not a number.") from None
    if length > max_body_bytes():
        raise _Refused(413, "payload_too_large", _too_large_text())


def _too_large_text() -> str:
    return (
        f"The body may be at most {max_body_bytes()} bytes as sent and "
        f"{max_decompressed_bytes()} bytes decompressed; split it into several requests."
    )


class _CappedBody(io.RawIOBase):
    """The request body as a stream that refuses to yield more than `cap` bytes."""

    def __init__(self, request: HttpRequest, cap: int) -> None:
        self.request, self.cap, self.total = request, cap, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.request.read(min(len(buffer), self.cap + 1 - self.total))
        self.total += len(data)
        if self.total > self.cap:
            raise _Refused(413, "payload_too_large", _too_large_text())
        buffer[: len(data)] = data
        return len(data)


def _body_spool(request: HttpRequest) -> IO[bytes]:
    """The whole body, decompressed, in a spooled temporary file (in memory up to 1 MB).

    Read in full before anything is stored, so a body over the limits (checked while
    reading, whatever Content-Length said) is a 413 that stored nothing.
    """
    stream: IO[bytes] = io.BufferedReader(_CappedBody(request, max_body_bytes()), _CHUNK)
    gzipped = request.headers.get("Content-Encoding", "").strip().lower() == "gzip"
    if not gzipped and stream.peek(2)[:2] == GZIP_MAGIC:
        raise _Refused(
            415, "unsupported_media_type", "The body is gzip: send Content-Encoding: gzip."
        )
    if gzipped:
        stream = gzip.GzipFile(fileobj=stream, mode="rb")
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115 - returned
    try:
        _copy_capped(stream, spool, max_decompressed_bytes())
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        spool.close()
        raise _Refused(400, "invalid_request", f"The body is not valid gzip ({exc}).") from None
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


def _copy_capped(source: IO[bytes], target: IO[bytes], cap: int) -> None:
    total = 0
    while chunk := source.read(_CHUNK):
        total += len(chunk)
        if total > cap:
            raise _Refused(413, "payload_too_large", _too_large_text())
        target.write(chunk)


def _report_response(report: IngestReport, log_format: str, source: str) -> JsonResponse:
    body = {"format": log_format, "source": source, **report.counts()}
    if report.read == 0:
        return _Refused(400, "invalid_request", "The body holds no lines.").response()
    if not report.rejected:
        return JsonResponse(body, status=202)
    body |= {
        "error": "invalid_lines",
        "error_description": (
            f"{report.rejected} of {report.read} lines were refused (listed with their line "
            "number); the others were stored. Sending stored lines again adds nothing."
        ),
        "errors": [{"line": e.line, "reason": e.reason} for e in report.errors],
        "errors_omitted": report.errors_omitted,
    }
    return JsonResponse(body, status=400)


# --- Ingestion tokens (admins) ------------------------------------------------------------


def _tokens_page(request: HttpRequest, form: IngestionTokenForm, status: int = 200) -> HttpResponse:
    tokens = IngestionToken.objects.select_related("created_by", "revoked_by")
    context = {"tokens": tokens, "form": form}
    return render(request, "analytics/ingestion_tokens.html", context, status=status)


@require_GET
@role_required(Role.ADMIN)
def ingestion_tokens(request: HttpRequest) -> HttpResponse:
    return _tokens_page(request, IngestionTokenForm())


@require_POST
@role_required(Role.ADMIN)
@form_once
def ingestion_token_new(request: HttpRequest) -> HttpResponse:
    form = IngestionTokenForm(request.POST)
    if not form.is_valid():
        return _tokens_page(request, form, status=400)
    try:
        token, plain = ingestion_token_create(
            actor=Actor.from_request(request),
            name=form.cleaned_data["name"],
            source=form.cleaned_data["source"],
            expires_at=form.expires_at(),
        )
    except ValidationError as exc:
        form.add_error(None, exc.messages)
        return _tokens_page(request, form, status=400)
    # Shown once on the next page (base/once.py): a reload must not create another token.
    once_put(request, _token_once_name(token.pk), {"plain": plain})
    return redirect("analytics:ingestion_token_shown", token_id=token.pk)


def _token_once_name(token_id) -> str:
    return f"ingestion-token:{token_id}"


@require_GET
@role_required(Role.ADMIN)
def ingestion_token_shown(request: HttpRequest, token_id) -> HttpResponse:
    """The new token, once; a reload says it was shown and how to get another."""
    token = get_object_or_404(IngestionToken, pk=token_id)
    shown = once_take(request, _token_once_name(token.pk)) or {}
    ingest_url = request.build_absolute_uri(reverse("analytics:ingest"))
    context = {"token": token, "plain": shown.get("plain"), "ingest_url": ingest_url}
    response = render(request, "analytics/ingestion_token_once.html", context)
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


@require_POST
@role_required(Role.ADMIN)
def ingestion_token_revoke_view(request: HttpRequest, token_id) -> HttpResponse:
    token = get_object_or_404(IngestionToken, pk=token_id)
    ingestion_token_revoke(actor=Actor.from_request(request), token=token)
    messages.success(
        request, f"Revoked the ingestion token “{token.name}”: it is refused from now on."
    )
    return redirect("analytics:ingestion_tokens")
