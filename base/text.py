"""Validators for text that people type and other people read: names, labels, notes.

One definition for every way in (dashboard forms, manage.py commands, a future API): the
model fields carry these validators, so a service's `full_clean()` applies them whatever
the caller. A single-line name refuses every control and format character (Unicode Cc, Cf,
line and paragraph separators): a newline breaks log lines, headers and URLs, an ESC starts
a terminal escape sequence, a bidi override makes a name read differently from what it is.
Multi-line text allows newline, carriage return and tab, and refuses the rest.
"""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

# Cc: C0/C1 controls (NUL, ESC, CSI...). Cf: format characters (bidi overrides, zero-width).
# Zl/Zp: line and paragraph separators. Cs: lone surrogates, what Python makes of bytes that
# are not UTF-8 (PostgreSQL cannot store them).
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
MULTI_LINE_ALLOWED = frozenset("\n\r\t")


def _first_refused(value: str, allowed: frozenset[str]) -> str | None:
    if value.isprintable():  # the common case, in C: no category lookup per character
        return None
    for char in value:
        if char not in allowed and unicodedata.category(char) in _REFUSED_CATEGORIES:
            return char
    return None


def _describe(char: str) -> str:
    return f"U+{ord(char):04X}"


@deconstructible
class TextValidator:
    """Refuses control and format characters, and text that is only whitespace."""

    def __init__(self, *, multi_line: bool = False):
        self.multi_line = multi_line

    def __call__(self, value) -> None:
        if not isinstance(value, str):
            raise ValidationError("Enter text.", code="invalid")
        if value and not value.strip():
            raise ValidationError("Enter more than whitespace.", code="blank")
        allowed = MULTI_LINE_ALLOWED if self.multi_line else frozenset()
        char = _first_refused(value, allowed)
        if char is not None:
            kind = (
                "control or formatting" if self.multi_line else "line break, control or formatting"
            )
            raise ValidationError(
                f"Remove the {kind} character {_describe(char)}.",
                code="control_character",
            )

    def __eq__(self, other) -> bool:
        return isinstance(other, TextValidator) and other.multi_line == self.multi_line

    def __hash__(self) -> int:
        return hash(("TextValidator", self.multi_line))


validate_single_line = TextValidator()
validate_multi_line = TextValidator(multi_line=True)
