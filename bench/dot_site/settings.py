"""A minimal django-oauth-toolkit project, measured beside Keyward on the same PostgreSQL.

Also serves a bare Django JSON view: the ceiling any Django token endpoint can reach here.
"""

from __future__ import annotations

import os

import dj_database_url

SECRET_KEY = "bench-only-not-a-secret"  # noqa: S105 - benchmark settings, never deployed
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "oauth2_provider",
]
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "bench.dot_site.urls"
DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=600)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
# "default" is DOT's own default (Django's PBKDF2, 1,000,000 iterations in Django 5.2);
# BENCH_DOT_HASHER=md5 measures it with a cheap hasher instead.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.MD5PasswordHasher",
]
OAUTH2_PROVIDER = {"CLIENT_SECRET_HASHER": os.environ.get("BENCH_DOT_HASHER", "default")}
LOGGING = {"version": 1, "disable_existing_loggers": True}
