"""The embedded default's Celery broker: kombu's filesystem transport, with each message
written under a temporary name and renamed into the queue when complete.

kombu's own `_put` creates the message file, then locks and writes it; its `_get` takes any
file of the queue without the lock. A worker polling in between took an empty message and
stopped on a JSONDecodeError (kombu issue 1551), and honcho stopped the rest of bin/dev
with it. A rename within one folder is atomic, so a message is whole or not there."""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        # The name sorts like kombu's (oldest first); the consumer takes only names ending
        # in ".<queue>.msg", so the partial file is never read.
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + ".part"
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
