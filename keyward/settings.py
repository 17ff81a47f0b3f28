"""Keyward settings, read from the environment only.

Development defaults work with nothing set (SQLite, Celery's filesystem broker, local
memory cache). With DEBUG off every production setting must be given, or start fails.
"""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("KEYWARD_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)


def env_required(name: str, dev_default: str) -> str:
    """A setting production must give explicitly; development gets a safe default."""
    value = os.environ.get(name, "")
    if value:
        return value
    if DEBUG:
        return dev_default
    raise ImproperlyConfigured(f"{name} must be set when DEBUG is off (see docs/configuration.md)")


SECRET_KEY = env_required("SECRET_KEY", "dev-insecure-secret-key-do-not-use-in-production")
# Keyed-hash pepper for client secrets. Changing it invalidates every stored secret.
KEYWARD_SECRET_PEPPER = env_required("KEYWARD_SECRET_PEPPER", "dev-pepper-do-not-use-in-production")
# Encrypts signing keys at rest; defaults to a key derived from SECRET_KEY.
KEYWARD_KEY_ENCRYPTION_SECRET = os.environ.get("KEYWARD_KEY_ENCRYPTION_SECRET", "") or SECRET_KEY
KEYWARD_ISSUER = env_required("KEYWARD_ISSUER", "http://127.0.0.1:8000").rstrip("/")
KEYWARD_DEFAULT_AUDIENCE = os.environ.get("KEYWARD_DEFAULT_AUDIENCE", "") or KEYWARD_ISSUER + "/api"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
if not DEBUG and not os.environ.get("ALLOWED_HOSTS"):
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

DATABASE_URL = env_required("DATABASE_URL", f"sqlite:///{VAR_DIR / 'keyward.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=600)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Web, worker and beat share the file; WAL plus a busy timeout keeps them from
    # failing with "database is locked" under the dev runner.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    # Covering indexes (INCLUDE) are PostgreSQL's; SQLite builds them without the extra
    # columns, which is all the embedded default needs: no warning on every command.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # An unreachable server fails a connection attempt in 5 s instead of the OS's minutes.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_required("REDIS_URL", "")
USE_REDIS = bool(REDIS_URL)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "csp",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "base",
    "audit",
    "clients",
    "tokens",
    "security",
    "analytics",
    "alerts",
    "reviews",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "keyward.middleware.HtmxLoginRedirectMiddleware",
    "keyward.middleware.SessionLifetimeMiddleware",
    "keyward.middleware.NoStoreForUsersMiddleware",
    "keyward.middleware.TwoFactorMiddleware",
    "keyward.middleware.PasswordChangeMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "keyward.urls"
WSGI_APPLICATION = "keyward.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "base.roles.role_context",
                "dashboard.context_processors.pipeline_problems",
                "alerts.context_processors.open_alerts",
            ],
            # `when`, `changes`, `clip`: the console's shared display filters, on every page.
            "builtins": ["dashboard.templatetags.console"],
        },
    }
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:overview"
LOGOUT_REDIRECT_URL = "login"

# Console login limits (django-axes with keyward/login_limits.py, which explains the design;
# docs/dashboard.md says what a user sees). Failed logins count for AXES_COOLOFF_TIME (the
# window) in three ways, each with its own threshold: one username from one address, one
# address across usernames (spraying), one username across addresses (distributed guessing).
# Reaching a threshold locks for KEYWARD_LOGIN_COOLOFF_MINUTES, doubled by each further
# failure, at most KEYWARD_LOGIN_COOLOFF_MAX_MINUTES.
AXES_HANDLER = "keyward.login_limits.LoginLimitsHandler"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address", "username"]
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
KEYWARD_LOGIN_FAILURES_PER_ADDRESS = int(os.environ.get("KEYWARD_LOGIN_FAILURES_PER_ADDRESS", "20"))
KEYWARD_LOGIN_FAILURES_PER_USERNAME = int(
    os.environ.get("KEYWARD_LOGIN_FAILURES_PER_USERNAME", "10")
)
KEYWARD_LOGIN_COOLOFF_MINUTES = float(os.environ.get("KEYWARD_LOGIN_COOLOFF_MINUTES", "3"))
KEYWARD_LOGIN_COOLOFF_MAX_MINUTES = float(os.environ.get("KEYWARD_LOGIN_COOLOFF_MAX_MINUTES", "30"))
KEYWARD_LOGIN_KNOWN_ADDRESS_DAYS = int(os.environ.get("KEYWARD_LOGIN_KNOWN_ADDRESS_DAYS", "30"))
# The window also bounds how long axes keeps a row, so it is never shorter than a lock.
AXES_COOLOFF_TIME = timedelta(
    minutes=max(
        float(os.environ.get("KEYWARD_LOGIN_WINDOW_MINUTES", "60")),
        KEYWARD_LOGIN_COOLOFF_MAX_MINUTES,
    )
)
# Attempts during a lock are not recorded: a lock ends on time however long the attack
# goes on, and the next failure after it doubles the cool-off.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
# The same client address as the audit trail and the token service (trusted proxies).
AXES_CLIENT_IP_CALLABLE = "base.http.client_ip"
AXES_LOCKOUT_CALLABLE = "keyward.views.locked_out"
# A wrong two-factor code counts as a failed login too (dashboard/views.py); axes keeps the
# posted form of each failure, so the code is masked like the password.
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "code"]

# Two-factor sign-in (django-otp; dashboard/two_factor.py). With KEYWARD_REQUIRE_2FA on,
# admins without an authenticator are sent to enrol after login. Off by default in
# development (bin/dev's demo users log in with a password only), on with DEBUG off.
KEYWARD_REQUIRE_2FA = env_bool("KEYWARD_REQUIRE_2FA", not DEBUG)
# Wrong codes one login may try before it is sent back to the password step.
KEYWARD_2FA_MAX_FAILURES = int(os.environ.get("KEYWARD_2FA_MAX_FAILURES", "5"))
KEYWARD_2FA_RECOVERY_CODES = 10
OTP_TOTP_ISSUER = "Keyward"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", "") or BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

if USE_REDIS:
    CACHES = {
        # Fails soft: with Redis down, cached rows are read from the database (base/cache.py).
        "default": {"BACKEND": "base.cache.FailSoftRedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: Redis in production, the filesystem broker in the embedded default.
if USE_REDIS:
    CELERY_BROKER_URL = REDIS_URL
else:
    # The host means nothing to this transport; naming one stops kombu warning on every
    # command that enqueues ("No hostname was supplied").
    CELERY_BROKER_URL = "filesystem://localhost/"
    # kombu's filesystem transport, writing each message whole (see keyward/broker.py).
    CELERY_BROKER_TRANSPORT = "keyward.broker:Transport"
    _celery_dir = VAR_DIR / "celery"
    # Any process may enqueue (web, CLI, worker), so make sure the broker folders exist.
    for _folder in ("queue", "processed", "control"):
        (_celery_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_celery_dir / "queue"),
        "data_folder_out": str(_celery_dir / "queue"),
        "processed_folder": str(_celery_dir / "processed"),
        "control_folder": str(_celery_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SOFT_TIME_LIMIT = 120
CELERY_TASK_TIME_LIMIT = 180
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Beat's schedule file (when each entry last ran). Development keeps it in var/ with the rest;
# production defaults to the temp folder, which every image has and a non-root user may
# write. keyward.celery.Scheduler creates a missing parent folder.
CELERY_BEAT_SCHEDULE_FILENAME = os.environ.get("KEYWARD_BEAT_SCHEDULE_FILE") or str(
    VAR_DIR / "celerybeat-schedule"
    if DEBUG
    else Path(tempfile.gettempdir()) / "keyward-celerybeat-schedule"
)
CELERY_BEAT_SCHEDULER = "keyward.celery:Scheduler"
CELERY_BEAT_SCHEDULE: dict = {
    # Moves buffered token events from Redis into the event store (analytics.tasks; the
    # task kept its first name).
    "drain-token-events": {
        "task": "tokens.tasks.drain_token_events",
        "schedule": float(os.environ.get("KEYWARD_INGEST_INTERVAL", "2")),
    },
    # Drops the Redis denylist's completeness marker while a revocation reached only the
    # database, and rebuilds the denylist in Redis when the marker is missing.
    "verify-denylist": {
        "task": "tokens.tasks.verify_denylist",
        "schedule": 5.0,
    },
    # Drops expired rows from the token denylist table and copies the live ones to Redis.
    "purge-expired-revocations": {
        "task": "tokens.tasks.purge_expired_revocations",
        "schedule": crontab(minute=17),
    },
    # Secret lifecycle: flags stale secrets and dormant clients, mails new findings.
    "scan-stale-secrets": {
        "task": "security.tasks.scan_stale_secrets",
        "schedule": crontab(minute=41),
    },
    # Alerts: runs the detections over recent events, resolves quiet alerts, sends updates.
    "evaluate-detections": {
        "task": "alerts.tasks.evaluate_detections",
        "schedule": float(os.environ.get("KEYWARD_ALERT_EVALUATION_INTERVAL", "30")),
    },
    # Signing-key schedule: keeps a next key published, rotates when due.
    "rotate-signing-keys": {
        "task": "tokens.tasks.rotate_signing_keys_if_due",
        "schedule": crontab(hour=3, minute=7),
    },
    # Event store retention: drops raw-event day partitions past retention, creates the
    # next days' partitions, prunes old rollups. Hourly: each run is cheap and idempotent,
    # and a missed run is made up within the hour.
    "apply-event-retention": {
        "task": "analytics.tasks.apply_event_retention",
        "schedule": crontab(minute=23),
    },
    # Scope review: opens, refreshes and resolves findings over the scope-usage rollups.
    # Hourly: usage is counted per hour, so a finding cannot change faster than that.
    "scan-review-findings": {
        "task": "reviews.tasks.scan_review_findings",
        "schedule": crontab(minute=47),
    },
    # Alert delivery log: deletes deliveries past KEYWARD_ALERT_DELIVERY_RETENTION_DAYS in
    # small batches. Hourly, so each run deletes about an hour's worth.
    "prune-alert-deliveries": {
        "task": "alerts.tasks.prune_alert_deliveries",
        "schedule": crontab(minute=29),
    },
    # Review campaigns: applies the no-response policy to campaigns past their deadline
    # (and starts the next of a recurring one), then mails the 7-day and 1-day reminders,
    # each claimed once. Every 15 minutes: a deadline bites within a quarter hour.
    "run-review-campaigns": {
        "task": "reviews.tasks.run_review_campaigns",
        "schedule": crontab(minute="*/15"),
    },
    # The overview's numbers for every range, computed into the cache (kept 30 s) before
    # a viewer asks: the first viewer after each expiry would otherwise wait for them.
    "warm-overview-cache": {
        "task": "analytics.tasks.warm_overview_cache",
        "schedule": 20.0,
    },
}

# Development writes each mail to a file in EMAIL_FILE_PATH: the console backend printed
# whole MIME messages into bin/dev's output, burying the logins and links it prints.
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.filebased.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "keyward@localhost")
KEYWARD_SECURITY_EMAIL = os.environ.get("KEYWARD_SECURITY_EMAIL", "")
# Only read by the filebased backend: development's default, and the secret-lifecycle
# worker test's.
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", "") or str(VAR_DIR / "mail")

# Secret lifecycle. clients asks this function for a new secret's expiry when it registers a
# client; clients sits below security and must not import it (see clients/services.py).
KEYWARD_NEW_SECRET_EXPIRY = "security.services.new_secret_expiry"  # noqa: S105 - a dotted path

# The token-event store (analytics/store.py). tokens writes events to it when there is no
# Redis buffer and clients reads a client's events from it; both sit below analytics, so
# they find it through this setting (audit.events.event_store) instead of importing it.
KEYWARD_EVENT_STORE = "analytics.store"
# Raw token events (and per-minute rollups) are kept this many days; older events are not
# stored at all. Hourly rollups, scope usage and source networks are kept longer.
# Scope review: a grant is "unused" after this many days without a request (and only once
# it is that old); least-privilege recommendations remove such grants.
KEYWARD_REVIEW_UNUSED_DAYS = int(os.environ.get("KEYWARD_REVIEW_UNUSED_DAYS", "90"))
KEYWARD_EVENT_RETENTION_DAYS = int(os.environ.get("KEYWARD_EVENT_RETENTION_DAYS", "30"))
KEYWARD_ROLLUP_RETENTION_DAYS = int(os.environ.get("KEYWARD_ROLLUP_RETENTION_DAYS", "400"))

# Token-event pipeline health (tokens/pipeline.py): /healthz and the console banner report a
# stall once the oldest waiting event, beat's last send or the last drain is this old.
KEYWARD_PIPELINE_STALE_SECONDS = float(os.environ.get("KEYWARD_PIPELINE_STALE_SECONDS", "60"))
# Workers send a drain themselves when none has run for this long (beat down or its message
# lost), so events keep reaching the database without beat.
KEYWARD_DRAIN_FALLBACK_SECONDS = float(os.environ.get("KEYWARD_DRAIN_FALLBACK_SECONDS", "10"))

# Alerts (alerts/): an alert with no matching event for this long resolves itself; each
# destination hears about one rule at most once per throttle period (then in updates).
KEYWARD_ALERT_QUIET_SECONDS = int(os.environ.get("KEYWARD_ALERT_QUIET_SECONDS", "3600"))
KEYWARD_ALERT_THROTTLE_SECONDS = int(os.environ.get("KEYWARD_ALERT_THROTTLE_SECONDS", "600"))
# Days the delivery log keeps a notification (alerts.tasks.prune_alert_deliveries).
KEYWARD_ALERT_DELIVERY_RETENTION_DAYS = int(
    os.environ.get("KEYWARD_ALERT_DELIVERY_RETENTION_DAYS", "90")
)
if KEYWARD_ALERT_DELIVERY_RETENTION_DAYS < 1:
    # 0 would empty the log every hour, today's failures included.
    raise ImproperlyConfigured("KEYWARD_ALERT_DELIVERY_RETENTION_DAYS must be at least 1")
# Log ingestion (POST /analytics/api/ingest): the largest body accepted as sent, and once
# gzip is undone (a 413 above either). docs/events.md documents both for senders.
KEYWARD_INGEST_MAX_BYTES = int(os.environ.get("KEYWARD_INGEST_MAX_BYTES", str(10 * 1024 * 1024)))
KEYWARD_INGEST_MAX_DECOMPRESSED_BYTES = int(
    os.environ.get("KEYWARD_INGEST_MAX_DECOMPRESSED_BYTES", str(100 * 1024 * 1024))
)
# Usage reports of resource servers (POST /analytics/api/usage): the largest body (413 above).
KEYWARD_USAGE_REPORT_MAX_BYTES = int(
    os.environ.get("KEYWARD_USAGE_REPORT_MAX_BYTES", str(1024 * 1024))
)

# Token service.
KEYWARD_TRUSTED_PROXIES = env_list("KEYWARD_TRUSTED_PROXIES", [])
KEYWARD_CLIENT_CACHE_SECONDS = float(os.environ.get("KEYWARD_CLIENT_CACHE_SECONDS", "0.9"))
KEYWARD_SIGNING_ALGORITHM = os.environ.get("KEYWARD_SIGNING_ALGORITHM", "RS256")
# Days between scheduled signing-key rotations; 0 turns the schedule off.
KEYWARD_SIGNING_KEY_ROTATION_DAYS = int(os.environ.get("KEYWARD_SIGNING_KEY_ROTATION_DAYS", "90"))
KEYWARD_RATE_LIMIT_WINDOW = int(os.environ.get("KEYWARD_RATE_LIMIT_WINDOW", "60"))
KEYWARD_RATE_LIMIT_PER_CLIENT = int(os.environ.get("KEYWARD_RATE_LIMIT_PER_CLIENT", "6000"))
KEYWARD_RATE_LIMIT_PER_IP = int(os.environ.get("KEYWARD_RATE_LIMIT_PER_IP", "12000"))
KEYWARD_RATE_LIMIT_FAILURES_PER_IP = int(os.environ.get("KEYWARD_RATE_LIMIT_FAILURES_PER_IP", "30"))
KEYWARD_RATE_LIMIT_INTROSPECT_PER_CALLER = int(
    os.environ.get("KEYWARD_RATE_LIMIT_INTROSPECT_PER_CALLER", "12000")
)
# Seconds between one process's sends of queued rate-limit counts and token events to
# Redis (tokens/batching.py); 0 sends each request's at once.
KEYWARD_TOKEN_EVENT_SEND_INTERVAL = float(
    os.environ.get("KEYWARD_TOKEN_EVENT_SEND_INTERVAL", "0.02")
)
# Introspections of tokens that are not valid ones of ours (token fishing).
KEYWARD_RATE_LIMIT_INTROSPECT_INACTIVE_PER_CALLER = int(
    os.environ.get("KEYWARD_RATE_LIMIT_INTROSPECT_INACTIVE_PER_CALLER", "300")
)
# Token service: the three endpoints skip session/auth/CSRF middleware,
# right after SecurityMiddleware; see tokens/middleware.py for why.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "tokens.middleware.TokenServiceShortcut",
)

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz(/web)?$"]
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# Console sessions: end after KEYWARD_SESSION_IDLE_MINUTES without a request (sliding: every
# request saves the session and so pushes its expiry on) and, however active, after
# KEYWARD_SESSION_MAX_HOURS from login (keyward/middleware.py SessionLifetimeMiddleware).
SESSION_COOKIE_AGE = int(float(os.environ.get("KEYWARD_SESSION_IDLE_MINUTES", "30")) * 60)
SESSION_SAVE_EVERY_REQUEST = True
KEYWARD_SESSION_MAX_SECONDS = int(float(os.environ.get("KEYWARD_SESSION_MAX_HOURS", "12")) * 3600)

# Logins hashing a password at once per web process; more are answered 503 "try again".
# Keep it below GRANIAN_BLOCKING_THREADS (bin/serve), so logins never take every thread.
KEYWARD_LOGINS_PER_PROCESS = int(os.environ.get("KEYWARD_LOGINS_PER_PROCESS", "1"))

# Content-Security-Policy (django-csp) on every page: scripts and styles only from our own
# static files, so no inline <script>, no on…= handlers and no style="…" attributes in
# templates (static/keyward.js holds the page behaviour; htmx runs with allowEval off and
# without its injected indicator <style>). Pico's icons are data: SVGs, hence img-src data:.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}
