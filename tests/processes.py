"""What a test needs to start a real process (a Celery worker, the web server) on the test
database pytest-django created."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings


def child_database_url() -> str:
    """The test database as a DATABASE_URL for a child process."""
    db = settings.DATABASES["default"]
    credentials = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"])
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    return f"postgres://{credentials}@{host}:{port}/{db['NAME']}"


def wait_for(condition, timeout: float = 40, what: str = "", log: Path | None = None):
    """Poll `condition` until it returns something truthy; fail with the log if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    detail = log.read_text(errors="replace") if log else ""
    pytest.fail(f"timed out waiting for {what}\n{detail}")


class CeleryWorker:
    """A `celery worker` subprocess (solo pool) on the test database and Redis, in its own
    process group so a test can kill it mid-task, logging to a file in `log_dir`."""

    def __init__(self, log_dir: Path, *, purge: bool = False, **env_overrides: str):
        self.log_path = log_dir / f"worker-{uuid.uuid4().hex[:8]}.log"
        env = os.environ | {
            "DATABASE_URL": child_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "DJANGO_SETTINGS_MODULE": "keyward.settings",
            "CELERY_TASK_ALWAYS_EAGER": "",
            # Development's file-based mail, next to the log rather than in the project's var/.
            "EMAIL_FILE_PATH": str(log_dir / "mail"),
        }
        command = [
            sys.executable, "-m", "celery", "-A", "keyward", "worker", "--pool=solo",
            "--loglevel=INFO", "--without-gossip", "--without-mingle",
            "-n", f"test-{uuid.uuid4().hex[:8]}@%h",
        ]  # fmt: skip
        # --purge drops tasks an earlier test left queued; off where a test relies on a
        # message redelivered after a killed worker.
        if purge:
            command.append("--purge")
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=settings.BASE_DIR,
                env=env | env_overrides,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_ready()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while " ready." not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"worker did not start:\n{self.log()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """A warm shutdown, as a deploy does; killed if it takes longer than 10 s."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """A crash: no chance to finish or acknowledge the task in hand."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
