"""Settings come from the environment: development works with nothing set, production fails
loudly on a missing setting and passes `check --deploy` when everything is given."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "x" * 20 + "-production-secret-key-with-enough-entropy-1234567890",
    "KEYWARD_SECRET_PEPPER": "pepper-for-the-test",
    "KEYWARD_ISSUER": "https://keyward.example.com",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "ALLOWED_HOSTS": "keyward.example.com",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    # DJANGO_ALLOW_ASYNC_UNSAFE is set by the browser tests; check --deploy rightly flags it.
    skip = set(PRODUCTION_ENV) | {"DJANGO_ALLOW_ASYNC_UNSAFE"}
    clean = {k: v for k, v in os.environ.items() if k not in skip}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


class TestSettings:
    def test_it_starts_in_development_with_nothing_set(self, tmp_path):
        result = manage("check", env={"KEYWARD_VAR_DIR": str(tmp_path)})
        assert result.returncode == 0, result.stderr

    def test_development_writes_mail_to_files_and_production_sends_it(self, tmp_path):
        show = "from django.conf import settings; print(settings.EMAIL_BACKEND)"
        development = manage(
            "shell", "--no-imports", "-c", show, env={"KEYWARD_VAR_DIR": str(tmp_path)}
        )
        assert development.stdout.strip() == "django.core.mail.backends.filebased.EmailBackend"
        production = manage("shell", "--no-imports", "-c", show, env=PRODUCTION_ENV)
        assert production.stdout.strip() == "django.core.mail.backends.smtp.EmailBackend"

    def test_it_passes_check_deploy_with_production_variables(self):
        result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "no issues" in result.stdout

    def test_it_collects_static_files_for_production(self, tmp_path):
        # The Docker build runs this; a vendored file pointing at a missing one breaks it.
        result = manage(
            "collectstatic", "--noinput", env=PRODUCTION_ENV | {"STATIC_ROOT": str(tmp_path)}
        )
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "staticfiles.json").exists()

    def test_it_fails_loudly_when_a_production_setting_is_missing(self):
        for name in ("SECRET_KEY", "KEYWARD_SECRET_PEPPER", "DATABASE_URL", "REDIS_URL"):
            env = {k: v for k, v in PRODUCTION_ENV.items() if k != name}
            result = manage("check", env=env)
            assert result.returncode != 0
            assert name in result.stderr
