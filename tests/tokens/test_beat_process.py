"""A real `celery beat` as production starts it: DEBUG off, only the required variables, a
working directory and KEYWARD_VAR_DIR that do not exist yet, no --schedule option."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client as HttpClient
from django.urls import reverse

from analytics.drain import token_events_drain
from tests.processes import child_database_url
from tokens.buffer import event_buffer_redis
from tokens.pipeline import BEAT_HEARTBEAT_KEY

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PROJECT_DIR = Path(django_settings.BASE_DIR)
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "beat-test",
    "KEYWARD_SECRET_PEPPER": "beat-test",
    "KEYWARD_ISSUER": "https://keyward.test",
    "ALLOWED_HOSTS": "keyward.test",
    "DJANGO_SETTINGS_MODULE": "keyward.settings",
    "PYTHONPATH": str(PROJECT_DIR),
}


@pytest.fixture
def redis(settings):
    if not settings.USE_REDIS:
        pytest.skip("needs REDIS_URL")
    client = event_buffer_redis()
    client.delete(BEAT_HEARTBEAT_KEY)
    yield client
    client.delete(BEAT_HEARTBEAT_KEY)


def beat_start(tmp_path: Path, **env_overrides) -> tuple[subprocess.Popen, Path]:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    log_path = tmp_path / "beat.log"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KEYWARD_", "DJANGO_", "CELERY_"))
    }
    env |= PRODUCTION_ENV | {
        "DATABASE_URL": child_database_url(),
        "REDIS_URL": django_settings.REDIS_URL,
        "KEYWARD_VAR_DIR": str(tmp_path / "no-var-here"),
        # The temp folder production's default schedule file lives in, for this test only.
        "TMPDIR": str(tmp_path),
    }
    env |= env_overrides
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "keyward", "beat", "--loglevel=INFO"],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, log_path


def beat_stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=10)


def wait_for_heartbeat(redis, process, log_path: Path, timeout: float = 20) -> float:
    deadline = time.monotonic() + timeout
    while (sent_at := redis.get(BEAT_HEARTBEAT_KEY)) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"beat sent nothing:\n{log_path.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)
    return float(sent_at)


class TestBeatInProduction:
    def test_it_starts_without_var_and_sends_the_drain(self, redis, tmp_path):
        process, log_path = beat_start(tmp_path)
        try:
            wait_for_heartbeat(redis, process, log_path)
            time.sleep(2.5)  # a couple more ticks: it stays up
            assert process.poll() is None, log_path.read_text(errors="replace")
        finally:
            beat_stop(process)
        log = log_path.read_text(errors="replace")
        assert "Sending due task drain-token-events" in log
        assert "FileNotFoundError" not in log
        # shelve's dbm backend picks the file names (one file or .dat/.dir/.bak).
        assert any(tmp_path.glob("keyward-celerybeat-schedule*"))
        assert not (tmp_path / "no-var-here").exists()

    def test_it_creates_the_folder_of_a_configured_schedule_file(self, redis, tmp_path):
        schedule = tmp_path / "state" / "beat" / "schedule"
        process, log_path = beat_start(tmp_path, KEYWARD_BEAT_SCHEDULE_FILE=str(schedule))
        try:
            wait_for_heartbeat(redis, process, log_path)
        finally:
            beat_stop(process)
        assert any(schedule.parent.glob("schedule*"))

    def test_its_heartbeat_makes_healthz_ok(self, redis, tmp_path):
        token_events_drain()
        http = HttpClient()
        assert http.get(reverse("healthz")).status_code == 503
        process, log_path = beat_start(tmp_path)
        try:
            wait_for_heartbeat(redis, process, log_path)
        finally:
            beat_stop(process)
        assert http.get(reverse("healthz")).json() == {"status": "ok"}


class TestBeatEmbedded:
    def test_it_starts_as_bin_dev_runs_it(self, tmp_path):
        # bin/dev: no REDIS_URL (filesystem broker), DEBUG on, the schedule in var/.
        var = tmp_path / "var"
        env = {"DEBUG": "1", "KEYWARD_VAR_DIR": str(var), "REDIS_URL": "", "DATABASE_URL": ""}
        process, log_path = beat_start(tmp_path, **env)
        try:
            deadline = time.monotonic() + 20
            # Beat logs "Sending due task" before it publishes: wait for the message too.
            while not (
                "Sending due task drain-token-events" in log_path.read_text(errors="replace")
                and _queued(var)
            ):
                assert process.poll() is None, log_path.read_text(errors="replace")
                assert time.monotonic() < deadline, log_path.read_text(errors="replace")
                time.sleep(0.1)
        finally:
            beat_stop(process)
        assert any(var.glob("celerybeat-schedule*"))


def _queued(var) -> bool:
    queue = var / "celery" / "queue"
    return queue.is_dir() and any(queue.iterdir())
