"""URLs of the tokens app.

The token-service endpoints are declared once, in TOKEN_SERVICE: the URLconf lists them
(reverse(), the metadata document, any request that reaches URL resolution) and the
shortcut middleware (tokens/middleware.py) builds its path lookup from the same entries.
"""

from __future__ import annotations

from django.urls import path

from audit.events import Endpoint

from . import views

app_name = "tokens"

# Machine endpoints served ahead of the rest of Django; each route's name is the
# event endpoint its events are recorded under (also when the view fails).
TOKEN_SERVICE = [
    path("token-srv/token", views.token, name=Endpoint.TOKEN.value),
    path("token-srv/introspect", views.introspect, name=Endpoint.INTROSPECT.value),
    path("token-srv/revoke", views.revoke, name=Endpoint.REVOKE.value),
]

# Public documents for resource servers and clients, also served ahead of the rest: a
# resource server refetching the JWKS must get it while the console is busy.
WELL_KNOWN = [
    path(".well-known/jwks.json", views.jwks, name="jwks"),
    path(".well-known/oauth-authorization-server", views.metadata, name="metadata"),
]

urlpatterns = [
    *TOKEN_SERVICE,
    *WELL_KNOWN,
    path("keys/", views.key_list, name="keys"),
    path("keys/rotate", views.key_rotate, name="rotate"),
]
