"""The project's URLconf plus a view that fails, to see the production 500 page."""

from __future__ import annotations

from django.urls import path

from keyward.urls import handler403, handler404, handler500, urlpatterns


def fail(request):
    raise RuntimeError("a bug")


urlpatterns = [*urlpatterns, path("fail/", fail)]
__all__ = ["handler403", "handler404", "handler500", "urlpatterns"]
