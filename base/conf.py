"""Settings read on every token request, each looked up once per process.

`django.conf.settings.NAME` costs ~3.5k instructions per read (callgrind): LazySettings'
`__getattribute__` asks every value for `_mask_wrapped`, which for a plain str or int is an
AttributeError with its message formatted. A token request read nine of ours. Settings do
not change in a running process; tests that override one send `setting_changed`, and every
remembered value is forgotten then.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

_values: dict[str, Any] = {}


def setting(name: str) -> Any:
    """`settings.<name>`, remembered after the first read."""
    try:
        return _values[name]
    except KeyError:
        value = _values[name] = getattr(settings, name)
        return value


def _forget(**_kwargs) -> None:
    _values.clear()


setting_changed.connect(_forget, dispatch_uid="base.conf.forget")
