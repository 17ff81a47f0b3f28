from __future__ import annotations

from django.urls import path

from . import views

app_name = "tokens"

urlpatterns = [
    path("keys/", views.key_list, name="keys"),
]
