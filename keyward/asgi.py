"""ASGI entry point: what gunicorn serves in production (gunicorn.conf.py).

The token service takes its own lean path (tokens/asgi.py); the dashboard and everything else
is Django's WSGI application, run on one thread per process by asgiref's bridge.
"""

from __future__ import annotations

import os

from asgiref.wsgi import WsgiToAsgi
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyward.settings")

django_wsgi = get_wsgi_application()  # sets Django up before tokens is imported

from tokens.asgi import TokenServiceASGI  # noqa: E402

application = TokenServiceASGI(fallback=WsgiToAsgi(django_wsgi))
