from __future__ import annotations

from django.apps import AppConfig


class BaseConfig(AppConfig):
    name = "base"
    verbose_name = "Console plumbing"
