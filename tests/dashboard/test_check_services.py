"""bin/test stops at once, naming the way out, when PostgreSQL or Redis is unreachable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def check(database_url: str, redis_url: str) -> subprocess.CompletedProcess:
    env = os.environ | {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    return subprocess.run(
        [sys.executable, "bin/check_services.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


class TestCheckServices:
    def test_it_passes_when_both_services_answer(self):
        result = check(os.environ["DATABASE_URL"], os.environ["REDIS_URL"])
        assert result.returncode == 0, result.stderr

    def test_it_names_each_unreachable_service_and_how_to_start_it(self):
        result = check("postgres://postgres@127.0.0.1:1/keyward", "redis://127.0.0.1:1/0")
        assert result.returncode == 1
        assert "PostgreSQL is not reachable" in result.stderr
        assert "Redis is not reachable" in result.stderr
        assert "docker compose up -d db redis" in result.stderr
