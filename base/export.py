"""Streamed CSV that spreadsheets open safely: one implementation for every export."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

# A spreadsheet evaluates a cell starting with one of these as a formula (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    """A file-like object whose write() hands the line back to the csv writer's caller."""

    def write(self, value: str) -> str:
        return value


def csv_safe(value: Any) -> str:
    """The cell as text, with a leading quote where a spreadsheet would see a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def csv_lines(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """Each row as one CSV line, every cell made formula-safe; lazy, for a streamed response."""
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow([csv_safe(cell) for cell in row])
