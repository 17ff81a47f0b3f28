"""What a test needs to start a real process (a Celery worker, the web server) on the test
database pytest-django created."""

from __future__ import annotations

from urllib.parse import quote

from django.conf import settings


def child_database_url() -> str:
    """The test database as a DATABASE_URL for a child process."""
    db = settings.DATABASES["default"]
    credentials = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"])
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    return f"postgres://{credentials}@{host}:{port}/{db['NAME']}"
