"""Django's standard ASGI entry point. Keyward is served over WSGI (bin/serve); this is here
for an ASGI server you may prefer, and runs the same views."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyward.settings")

application = get_asgi_application()
