from __future__ import annotations

from django.http import JsonResponse
from django.urls import path
from oauth2_provider import views as oauth2_views


def bare_json(request):
    return JsonResponse({"ok": True})


urlpatterns = [
    path("o/token/", oauth2_views.TokenView.as_view()),
    path("bare/", bare_json),
]
