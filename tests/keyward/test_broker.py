"""The embedded default's broker: messages go through whole, and a message still being
written is not taken by a polling worker."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings
from kombu import Connection

from keyward.broker import Transport


@pytest.fixture
def connection(tmp_path):
    queue = tmp_path / "queue"
    queue.mkdir()
    options = {
        "data_folder_in": str(queue),
        "data_folder_out": str(queue),
        "store_processed": False,
    }
    with Connection(
        "filesystem://localhost/", transport=Transport, transport_options=options
    ) as conn:
        yield conn, queue


class TestFilesystemBroker:
    def test_it_delivers_a_message_whole(self, connection):
        conn, queue = connection
        with conn.SimpleQueue("celery") as simple:
            simple.put({"task": "tokens.tasks.drain_token_events"})
            assert not list(queue.glob("*.part"))
            message = simple.get(timeout=2)
            assert message.payload == {"task": "tokens.tasks.drain_token_events"}
            message.ack()

    def test_it_does_not_take_a_message_still_being_written(self, connection):
        conn, queue = connection
        # What a writer leaves between creating its file and renaming it into the queue.
        (queue / "1_00000000-0000-4000-8000-000000000000.celery.msg.part").write_bytes(b"")
        with conn.SimpleQueue("celery") as simple, pytest.raises(simple.Empty):
            simple.get(timeout=0.2)

    def test_the_embedded_default_uses_it_without_a_warning(self, tmp_path):
        # bin/dev: no Redis, DEBUG on, var/ elsewhere.
        env = {**os.environ, "DEBUG": "1", "KEYWARD_VAR_DIR": str(tmp_path), "REDIS_URL": ""}
        code = (
            "from keyward.celery import app; c = app.connection_for_write(); "
            "print(c.transport_cls, c.hostname)"
        )
        shell = [sys.executable, str(settings.BASE_DIR / "manage.py"), "shell", "-v0", "-c", code]
        done = subprocess.run(
            shell, env=env, check=True, timeout=60, capture_output=True, text=True
        )
        assert done.stdout.split() == ["keyward.broker:Transport", "localhost"]
        assert "No hostname was supplied" not in done.stderr
