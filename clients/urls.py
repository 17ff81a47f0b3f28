from __future__ import annotations

from django.urls import path

from . import views

app_name = "clients"

urlpatterns = [
    path("", views.client_list, name="list"),
    path("new/", views.client_register, name="register"),
    path("scopes/", views.scope_list, name="scope_list"),
]
