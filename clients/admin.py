from __future__ import annotations

from django.contrib import admin

from .models import Client, Scope


# Changes belong in the dashboard, where services write the audit trail; the Django admin
# only lets superusers look.
@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = ("name", "client_id", "environment", "status", "created_at")
    readonly_fields = [f.name for f in Client._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Scope)
class ScopeAdmin(admin.ModelAdmin):
    list_display = ("name", "owning_team", "sensitive")
    readonly_fields = [f.name for f in Scope._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
