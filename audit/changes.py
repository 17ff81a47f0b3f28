"""An audit entry's before/after as labelled fields a person can read.

Values are stored as JSON (`AdminAction.before`/`after`); shown raw they read as Python or
JSON reprs (`['10.0.0.0/8']`, `{'secret_id': 7, ...}`). Here each value becomes either one
item or a list of items, each safe HTML: booleans as yes/no, nothing as an em dash, lists
one item per line, date-times in the console's one format, durations in words, and a
secret by its hint (`kwsec_…Nlg4`), never its row id. The partial
`templates/audit/_changes.html` renders the result, wherever changes are shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import capfirst

from base.display import EMPTY, as_datetime, datetime_html, duration_text

Labels = Mapping[str, str]


@dataclass(frozen=True)
class Shown:
    """A value as a page shows it: `items` (safe HTML), as a list or as one value."""

    items: tuple[SafeString, ...]
    is_list: bool = False


@dataclass(frozen=True)
class Change:
    """One field of an audit entry: `kind` is "changed", "added" or "removed"."""

    field: str
    label: str
    kind: str
    before: Shown | None = None
    after: Shown | None = None


def label_for(field: str, labels: Labels) -> str:
    return labels.get(field) or capfirst(field.replace("_", " "))


def entry_changes(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, labels: Labels
) -> list[Change]:
    """Field by field, in the order recorded; fields equal on both sides are left out."""
    before, after = _without_row_ids(before or {}), _without_row_ids(after or {})
    changes = []
    for field in dict.fromkeys([*before, *after]):
        label = label_for(field, labels)
        if field in before and field in after:
            if before[field] != after[field]:
                old, new = show(field, before[field], labels), show(field, after[field], labels)
                changes.append(Change(field, label, "changed", old, new))
        elif field in after:
            changes.append(Change(field, label, "added", after=show(field, after[field], labels)))
        else:
            shown = show(field, before[field], labels)
            changes.append(Change(field, label, "removed", before=shown))
    return changes


def _without_row_ids(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A secret is named by its hint; its row id (recorded beside it) means nothing to people."""
    if "hint" in fields:
        return {key: value for key, value in fields.items() if key != "secret_id"}
    return dict(fields)


def show(field: str, value: Any, labels: Labels) -> Shown:
    if isinstance(value, list | tuple):
        if not value:
            return Shown((SafeString(EMPTY),))
        return Shown(tuple(_item(field, item, labels) for item in value), is_list=True)
    return Shown((_item(field, value, labels),))


def _item(field: str, value: Any, labels: Labels) -> SafeString:
    if value is None or value == "" or value == [] or value == {}:
        return SafeString(EMPTY)
    if isinstance(value, bool):
        return SafeString("yes" if value else "no")
    if isinstance(value, dict):
        return _mapping(value, labels)
    if isinstance(value, list | tuple):
        return format_html_join(", ", "{}", ((_item(field, item, labels),) for item in value))
    moment = as_datetime(value)
    if moment is not None:
        return datetime_html(moment)
    if field.endswith("_seconds") and isinstance(value, int):
        return format_html("{}", duration_text(value))
    return format_html("{}", value)


def _mapping(value: Mapping[str, Any], labels: Labels) -> SafeString:
    """A nested record on one line; a secret reads `kwsec_…Nlg4, expires 2026-12-03 08:45 UTC`."""
    if "hint" in value:
        text = format_html("<code>{}</code>", value["hint"])
        if value.get("expires_at"):
            text = format_html("{}, expires {}", text, _item("expires_at", value["expires_at"], {}))
        return text
    return format_html_join(
        "; ",
        "{}: {}",
        ((label_for(key, labels), _item(key, item, labels)) for key, item in value.items()),
    )
