from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from clients.models import Client, ClientSecret, Scope, ScopeGrant

from .roles import Role, role_required


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


@require_GET
@role_required(Role.VIEWER)
def overview(request: HttpRequest) -> HttpResponse:
    counts = {
        "clients": Client.objects.count(),
        "active_clients": Client.objects.active().count(),
        "scopes": Scope.objects.count(),
        "grants": ScopeGrant.objects.count(),
        "secrets": ClientSecret.objects.filter(revoked_at__isnull=True).count(),
    }
    return render(request, "dashboard/overview.html", {"counts": counts})


@require_GET
@role_required(Role.ADMIN)
def user_list(request: HttpRequest) -> HttpResponse:
    raise NotImplementedError


def permission_denied(request: HttpRequest, exception=None) -> HttpResponse:
    return render(request, "403.html", status=403)
