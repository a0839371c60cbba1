"""Broker helpers for tests that start real Celery workers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any


def purge_queues(app: Any, queues: Iterable[str]) -> None:
    """Drop the messages earlier tests of this process left on ``queues`` (a task sent after commit that
    no worker was running for): they are not the next test's, and a worker would run them there."""
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for name in queues:
            with contextlib.suppress(Exception):  # a queue never declared has nothing to purge
                channel.queue_purge(name)
