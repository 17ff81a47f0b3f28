from __future__ import annotations

from django.contrib import admin

from audit.admin import ReadOnlyAdmin

from .models import TokenEvent


@admin.register(TokenEvent)
class TokenEventAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "endpoint", "client_id", "outcome", "reason", "status_code")
    list_filter = ("endpoint", "outcome", "reason")
    search_fields = ("client_id", "jti")
