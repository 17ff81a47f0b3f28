"""Ingestion of token-service logs (JSON Lines) into the event store.

`manage.py ingest_logs` and the HTTP endpoint (analytics/ingestion_views.py) both call
`log_lines_ingest` over `jsonl_lines`:

1. Read the input as lines of at most MAX_LINE_BYTES, gzip or plain (told by the magic
   bytes), so memory stays constant whatever the size: one line and one batch at a time.
2. Map each line with its format (analytics/formats.py). A line that does not parse, map
   or fit the retention window is refused with its line number and reason and never stops
   the lines after it; a line that is not a client-credentials token event is skipped.
3. Every `batch_size` records: mark which client_ids name a registered client (one query
   per batch) and write the batch through `token_events_store`, the store's one write
   path, which skips ids already stored. Deterministic event ids make that idempotent:
   ingesting a file twice stores it once, and the second run counts duplicates.
"""

from __future__ import annotations

import gzip
import logging
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson
import psycopg
from django.conf import settings
from django.db import DataError, IntegrityError

from audit.events import TokenEventRecord
from clients.models import Client

from .formats import FORMATS, NotATokenEvent
from .store import token_events_store

logger = logging.getLogger(__name__)

BATCH_SIZE = 5000
# A token event is a few hundred bytes (an Okta event a few kB); a longer line is refused
# rather than read whole, which keeps memory bounded for any input.
MAX_LINE_BYTES = 1024 * 1024
# Events may carry a time slightly ahead of ours (clock skew); further ahead is refused.
MAX_FUTURE_SECONDS = 3600
DEFAULT_RETENTION_DAYS = 30
GZIP_MAGIC = b"\x1f\x8b"


def retention_days() -> int:
    """How long raw events are kept (the event store's setting; 30 days by default)."""
    return int(getattr(settings, "KEYWARD_EVENT_RETENTION_DAYS", DEFAULT_RETENTION_DAYS))


@dataclass
class Rejection:
    line: int
    reason: str


@dataclass
class IngestReport:
    """What happened to each line read. read = ingested + duplicates + rejected + skipped."""

    read: int = 0
    ingested: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: int = 0
    # The first `error_cap` rejections; `rejected` counts them all.
    errors: list[Rejection] = field(default_factory=list)
    error_cap: int = 100

    def reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        if len(self.errors) < self.error_cap:
            self.errors.append(Rejection(line, reason))

    @property
    def errors_omitted(self) -> int:
        return self.rejected - len(self.errors)

    def counts(self) -> dict[str, int]:
        return {
            "read": self.read,
            "ingested": self.ingested,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "skipped": self.skipped,
        }


class StreamBroken(Exception):  # noqa: N818 - the input, not our code, is at fault
    """The input ended or broke mid-way (a truncated or corrupt gzip stream)."""


# --- Reading ------------------------------------------------------------------------------


def jsonl_open(stream: IO[bytes]) -> IO[bytes]:
    """`stream`, decompressed when it starts with the gzip magic bytes. `stream` must be
    peekable (a BufferedReader: open(path, "rb"), sys.stdin.buffer)."""
    if stream.peek(2)[:2] == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=stream, mode="rb")
    return stream


def jsonl_lines(stream: IO[bytes], *, max_line: int = MAX_LINE_BYTES) -> Iterator[tuple[int, Any]]:
    """(line number, bytes) for each line, or (line number, Rejection) for one too long.

    Reads at most `max_line` + 1 bytes at a time; an over-long line is skipped to its end
    without being kept. A gzip stream that breaks ends the iteration with StreamBroken.
    """
    number = 0
    try:
        while True:
            line = stream.readline(max_line + 1)
            if not line:
                return
            number += 1
            if len(line) > max_line:
                while line and not line.endswith(b"\n"):
                    line = stream.readline(max_line + 1)
                yield number, Rejection(number, f"line longer than {max_line} bytes")
                continue
            yield number, line
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise StreamBroken(f"the gzip stream ends or breaks after line {number} ({exc})") from exc


# --- Ingesting ----------------------------------------------------------------------------


def log_lines_ingest(
    *,
    lines: Iterable[tuple[int, Any]],
    log_format: str,
    source: str | None = None,
    batch_size: int = BATCH_SIZE,
    error_cap: int = 100,
    time_shift: float = 0.0,
) -> IngestReport:
    """Map and store `lines` (from `jsonl_lines`); returns the counts and the refusals.

    `source` names the service the logs came from (default: the format's, see FORMATS).
    `time_shift` seconds are added to every event's time (`ingest_logs --shift-to-now`).
    Must run outside a transaction: each batch commits on its own.
    """
    fmt = FORMATS[log_format]
    run = _Run(log_format=log_format, source=source or fmt.default_source, time_shift=time_shift)
    run.report.error_cap = error_cap
    try:
        for number, line in lines:
            run.line_ingest(number, line)
            if len(run.batch) >= batch_size:
                run.batch_write()
    except StreamBroken as exc:
        run.report.read += 1  # the line it broke in
        run.report.reject(run.report.read, str(exc))
    run.batch_write()
    return run.report


def log_lines_newest(*, lines: Iterable[tuple[int, Any]], log_format: str) -> float | None:
    """The time of the newest token event in `lines` (epoch seconds), or None: the first
    pass of `ingest_logs --shift-to-now`. Lines that do not map are passed over."""
    newest = None
    try:
        for _number, line in lines:
            if isinstance(line, Rejection) or not line.strip():
                continue
            try:
                record = log_line_map(line, log_format=log_format, source="newest")
            except (NotATokenEvent, LineRefused):
                continue
            newest = record.occurred_at if newest is None else max(newest, record.occurred_at)
    except StreamBroken:
        pass
    return newest


class _Run:
    """One ingestion: the lines mapped so far, waiting in `batch` (by event id)."""

    def __init__(self, *, log_format: str, source: str | None, time_shift: float) -> None:
        self.log_format = log_format
        self.source = source
        self.time_shift = time_shift
        self.window = _TimeWindow()
        self.report = IngestReport()
        self.batch: dict[str, tuple[int, TokenEventRecord]] = {}

    def line_ingest(self, number: int, line: bytes | Rejection) -> None:
        report = self.report
        report.read += 1
        if isinstance(line, Rejection):
            report.reject(number, line.reason)
            return
        stripped = line.strip()
        if not stripped:
            report.skipped += 1  # blank lines (a trailing newline, padding) carry nothing
            return
        try:
            record = log_line_map(stripped, log_format=self.log_format, source=self.source)
        except NotATokenEvent:
            report.skipped += 1
            return
        except LineRefused as exc:
            report.reject(number, str(exc))
            return
        record.occurred_at += self.time_shift
        refusal = self.window.refusal(record.occurred_at)
        if refusal:
            report.reject(number, refusal)
        elif record.id in self.batch:
            report.duplicates += 1  # the same event twice within one batch
        else:
            self.batch[record.id] = (number, record)

    def batch_write(self) -> None:
        if self.batch:
            _batch_write(list(self.batch.values()), self.report)
            self.batch = {}


_LINE_ERRORS = (orjson.JSONDecodeError, KeyError, TypeError, ValueError, OverflowError)


class LineRefused(Exception):  # noqa: N818 - a verdict about a line
    """A line that cannot become a token event; the message says why, in plain words."""


def log_line_map(line: bytes, *, log_format: str, source: str | None) -> TokenEventRecord:
    """One JSON line as a record (client_known not yet set). Raises NotATokenEvent for a
    line to skip, LineRefused for one to refuse, and nothing else, whatever the bytes."""
    try:
        data = orjson.loads(line)
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        return FORMATS[log_format].map(data, source)
    except NotATokenEvent:
        raise
    except _LINE_ERRORS as exc:
        raise LineRefused(_line_error(exc)) from None


def _line_error(exc: Exception) -> str:
    """A refusal in plain words, short enough for a terminal line."""
    if isinstance(exc, orjson.JSONDecodeError):
        text = f"not valid JSON, or cut short ({exc})"
    elif isinstance(exc, KeyError):
        text = f"missing field {exc.args[0]!r}"
    else:
        text = str(exc) or exc.__class__.__name__
    return text[:200]


class _TimeWindow:
    """The times the store accepts: within the retention window, not in the future."""

    def __init__(self) -> None:
        self.days = retention_days()
        now = time.time()
        self.oldest = now - self.days * 86400
        self.newest = now + MAX_FUTURE_SECONDS

    def refusal(self, occurred_at: float) -> str | None:
        if occurred_at < self.oldest:
            return f"older than the event retention ({self.days} days)"
        if occurred_at > self.newest:
            return "more than an hour in the future"
        return None


def _batch_write(entries: list[tuple[int, TokenEventRecord]], report: IngestReport) -> None:
    records = [record for _number, record in entries]
    _client_known_mark(records)
    try:
        inserted = token_events_store(records)
    except _ROW_ERRORS:
        # Valid by the record's rules, yet the database refused the batch: find the line
        # one record at a time, so one bad line costs only itself.
        logger.exception("log ingestion: batch refused, writing it record by record")
        inserted = _records_write_one_by_one(entries, report)
        report.ingested += inserted
        return
    report.ingested += inserted
    report.duplicates += len(records) - inserted


# As in analytics/drain.py: errors a bad row causes. COPY is psycopg's own API, so its errors
# arrive unwrapped; an unreachable database (OperationalError) is not one of them.
_ROW_ERRORS = (DataError, IntegrityError, psycopg.DataError, psycopg.IntegrityError, ValueError)


def _records_write_one_by_one(entries, report: IngestReport) -> int:
    inserted = 0
    for number, record in entries:
        try:
            one = token_events_store([record])
        except _ROW_ERRORS as exc:
            report.reject(number, f"refused by the database ({str(exc).splitlines()[0][:150]})")
            continue
        inserted += one
        report.duplicates += 1 - one
    return inserted


def _client_known_mark(records: list[TokenEventRecord]) -> None:
    """client_known: whether the client_id names a registered client (one query)."""
    ids = {record.client_id for record in records if record.client_id}
    known = set(Client.objects.filter(client_id__in=ids).values_list("client_id", flat=True))
    for record in records:
        record.client_known = record.client_id in known
