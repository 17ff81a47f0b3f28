from __future__ import annotations

import time
import uuid

from django.http import JsonResponse
from django.urls import path
from joserfc import jwt
from joserfc.jwk import ECKey
from oauth2_provider import views as oauth2_views
from oauth2_provider.models import Application

SIGNING_KEY = ECKey.generate_key("P-256", parameters={"kid": "bench"})


def bare_json(request):
    return JsonResponse({"ok": True})


def bare_sign_and_read(request):
    """The issue's reference point: a bare view that reads one row and signs an ES256 JWT."""
    app = Application.objects.only("client_id").first()
    now = int(time.time())
    claims = {"sub": app.client_id, "iat": now, "exp": now + 3600, "jti": uuid.uuid4().hex}
    token = jwt.encode({"alg": "ES256", "kid": "bench"}, claims, SIGNING_KEY)
    return JsonResponse({"access_token": token, "token_type": "Bearer", "expires_in": 3600})


urlpatterns = [
    path("o/token/", oauth2_views.TokenView.as_view()),
    path("bare/", bare_json),
    path("bare-sign/", bare_sign_and_read),
]
