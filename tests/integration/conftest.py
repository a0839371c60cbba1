"""Real services for integration tests: a moto server on loopback and a Celery worker.

The worker consumes from the configured broker: the machine's Redis when REDIS_URL is set
(as in CI), otherwise the embedded SQLite broker, so the suite also passes on a laptop.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    # boto3's standard chain picks the endpoint up: nothing in the app names it.
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    from registry_app.aws import session

    session.clear_cache()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def celery_worker_live(transactional_db) -> Iterator[object]:  # type: ignore[no-untyped-def]
    from celery.contrib.testing.worker import start_worker

    from governance.celery import app

    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=30) as worker:
        yield worker
