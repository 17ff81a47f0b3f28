from __future__ import annotations

from django.urls import path

from . import views

app_name = "tokens"

urlpatterns = [
    path("token-srv/token", views.token, name="token"),
    path("token-srv/introspect", views.introspect, name="introspect"),
    path("token-srv/revoke", views.revoke, name="revoke"),
    path(".well-known/jwks.json", views.jwks, name="jwks"),
    path(".well-known/oauth-authorization-server", views.metadata, name="metadata"),
    path("keys/", views.key_list, name="keys"),
    path("keys/rotate", views.key_rotate, name="rotate"),
]
