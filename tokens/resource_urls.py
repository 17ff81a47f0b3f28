from __future__ import annotations

from django.urls import path

from . import resource_views

urlpatterns = [
    path("protected-resource", resource_views.protected_resource, name="protected-resource"),
    path(
        "protected-resource/online",
        resource_views.protected_resource_online,
        name="protected-resource-online",
    ),
]
