from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from dashboard.roles import Role, role_required


@role_required(Role.ADMIN)
def key_list(request: HttpRequest) -> HttpResponse:
    raise NotImplementedError
