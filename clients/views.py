from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from dashboard.roles import Role, role_required


@role_required(Role.VIEWER)
def client_list(request: HttpRequest) -> HttpResponse:
    raise NotImplementedError


@role_required(Role.OPERATOR)
def client_register(request: HttpRequest) -> HttpResponse:
    raise NotImplementedError


@role_required(Role.VIEWER)
def scope_list(request: HttpRequest) -> HttpResponse:
    raise NotImplementedError
