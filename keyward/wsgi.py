"""The WSGI application bin/serve runs: the token service's routes answered by its thin
front (tokens/front.py says why), everything else by Django's handler."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyward.settings")

django_application = get_wsgi_application()

from tokens.front import token_service_front  # noqa: E402 - needs the apps loaded above

application = token_service_front(django_application)
