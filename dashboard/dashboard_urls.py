from __future__ import annotations

from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("users/", views.user_list, name="users"),
    path("users/new/", views.user_create, name="user_create"),
    path("users/<str:username>/role/", views.user_set_role, name="user_set_role"),
    path("users/<str:username>/active/", views.user_set_active, name="user_set_active"),
]
