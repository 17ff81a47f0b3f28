"""manage.py ingest_logs: another token service's logs (or Keyward's own) into the event store."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import IO, Any

from django.db import DatabaseError
from tqdm import tqdm

from analytics.formats import FORMATS, SOURCE_NAME_RE
from analytics.ingestion import (
    BATCH_SIZE,
    IngestReport,
    jsonl_lines,
    jsonl_open,
    log_lines_ingest,
    log_lines_newest,
)
from clients.management.commands._cli import KeywardCommand, bad_input

PROGRESS_EVERY = 1000  # lines between progress-bar updates


DAY = 86_400


class Command(KeywardCommand):
    help = (
        "Ingest token-service logs (JSON Lines, plain or gzip) into the event store. "
        "Re-ingesting a file adds nothing; refused lines are reported with their number."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", help="A file (plain or gzip), or - for standard input.")
        parser.add_argument("--format", required=True, choices=sorted(FORMATS))
        parser.add_argument(
            "--source",
            help="The service the logs came from, shown on every event (default: the format "
            "name; for --format keyward, each line's own source).",
        )
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
        parser.add_argument(
            "--max-errors",
            type=int,
            default=20,
            help="Refused lines reported one by one (the rest are counted). Default 20.",
        )
        parser.add_argument(
            "--shift-to-now",
            action="store_true",
            help="Move every event's time by whole days so the newest is within the last day "
            "(for sample and demo files, which would otherwise be older than the retention; "
            "re-runs move them alike, so they stay idempotent). Reads the file twice.",
        )

    def handle(self, *args, **options) -> None:
        source = options["source"]
        if source is not None and not SOURCE_NAME_RE.match(source):
            raise bad_input("--source: lowercase letters, digits, '.', '_' or '-', at most 64.")
        if options["batch_size"] < 1:
            raise bad_input("--batch-size must be at least 1.")
        path = options["path"]
        if options["shift_to_now"] and path == "-":
            raise bad_input("--shift-to-now needs a file: it reads the input twice.")
        shift = self._shift(path, options["format"]) if options["shift_to_now"] else 0.0
        try:
            with ExitStack() as stack:
                raw = self._open(stack, path)
                report = log_lines_ingest(
                    lines=self._with_progress(stack, raw, jsonl_lines(jsonl_open(raw))),
                    log_format=options["format"],
                    source=source,
                    batch_size=options["batch_size"],
                    error_cap=max(options["max_errors"], 0),
                    time_shift=shift,
                )
        except DatabaseError as exc:
            raise bad_input(
                f"The database refused or is unreachable ({exc.__class__.__name__}); batches "
                "written before stay, and running the command again skips them."
            ) from exc
        self._report(report)

    def _open(self, stack: ExitStack, path: str) -> IO[bytes]:
        if path == "-":
            return sys.stdin.buffer
        try:
            return stack.enter_context(open(path, "rb"))  # noqa: SIM115 - closed by the stack
        except OSError as exc:
            raise bad_input(f"Cannot read {path}: {exc.strerror or exc}.") from None

    def _shift(self, path: str, log_format: str) -> float:
        with ExitStack() as stack:
            raw = self._open(stack, path)
            newest = log_lines_newest(lines=jsonl_lines(jsonl_open(raw)), log_format=log_format)
        if newest is None:
            return 0.0
        # Whole days, so the newest lands within the last day and a re-run moves every
        # event to the same time as before: the event store's key is (time, id), so a
        # shift that changed between runs would store the file again.
        return (time.time() - newest) // DAY * DAY

    def _with_progress(
        self, stack: ExitStack, raw: IO[bytes], lines: Iterator[tuple[int, Any]]
    ) -> Iterator[tuple[int, Any]]:
        """`lines`, moving a progress bar on stderr (when it is a terminal): bytes of the
        file read (compressed bytes for gzip), or lines for a pipe."""
        size = _size(raw)
        bar = stack.enter_context(
            tqdm(
                total=size,
                unit="B" if size is not None else " lines",
                unit_scale=True,
                file=sys.stderr,
                disable=None,  # off when stderr is not a terminal (cron, CI, tests)
                desc="ingesting",
            )
        )
        for count, item in enumerate(lines, start=1):
            yield item
            if count % PROGRESS_EVERY == 0:
                bar.update(raw.tell() - bar.n if size is not None else PROGRESS_EVERY)
        if size is not None:
            bar.update(size - bar.n)

    def _report(self, report: IngestReport) -> None:
        for rejection in report.errors:
            self.stderr.write(f"line {rejection.line}: {rejection.reason}")
        if report.errors_omitted:
            self.stderr.write(f"… and {report.errors_omitted} more refused lines")
        self.stdout.write(
            f"read {report.read}, ingested {report.ingested}, duplicates {report.duplicates}, "
            f"rejected {report.rejected}, skipped {report.skipped} "
            "(not client-credentials token events)"
        )


def _size(raw: IO[bytes]) -> int | None:
    """The file's size, or None for a pipe (no size, no position)."""
    try:
        if not raw.seekable():
            return None
        position = raw.tell()
        size = raw.seek(0, 2)
        raw.seek(position)
    except OSError:
        return None
    return size
