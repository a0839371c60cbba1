"""Shared fixtures: fake AWS credentials, moto, a registry source, and users."""

from __future__ import annotations

import os
import socket
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest


def _bounded_lock_waits() -> None:
    """On PostgreSQL, no test connection waits for a lock forever, and none stays idle in a transaction
    forever: a worker thread a failed test left inside a transaction would otherwise block the next
    test's flush (TRUNCATE) until CI's own time limit. A test never legitimately waits this long."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if "postgresql" in database["ENGINE"]:
        options = database.setdefault("OPTIONS", {})
        bounds = "-c lock_timeout=120000 -c idle_in_transaction_session_timeout=300000"
        options["options"] = f"{options.get('options', '')} {bounds}".strip()


_bounded_lock_waits()

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
}


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never let a test reach real AWS: fake keys, no profile, no endpoint override."""
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    from registry_app.aws import session as aws_session

    aws_session.clear_cache()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    """Tests create users by the dozen; PBKDF2 would spend most of the run hashing passwords.
    The throttling and SSO tests that need a real login still log in through this hasher."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def audit_anchor_file(settings: Any, tmp_path: Any) -> Any:
    """Audit anchors (written at exports, by the beat and verify_audit) go to a file of this test's own,
    never to var/, where one test's anchors would be another's "deleted tail"."""
    settings.AUDIT_ANCHOR_S3_URI = ""
    settings.AUDIT_ANCHOR_FILE = str(tmp_path / "audit-anchors.jsonl")
    return settings.AUDIT_ANCHOR_FILE


@pytest.fixture
def personas(db: None) -> dict[str, Any]:
    """One user per role, a viewer, an outsider, staff and a registrant (tests/personas.py)."""
    from tests.personas import cast

    return cast()


@pytest.fixture
def aws() -> Iterator[None]:
    """In-process fake AWS for every service: moto with the AWS-faithful layer
    (``registry_app.devtools.aws_fake``, docs/aws-fake.md), so tests see AWS's semantics where
    moto differs (UpdateModelPackage merges, Search pages/sorts/filters, STS name rules...)."""
    from moto import mock_aws

    from registry_app.devtools import aws_fake

    aws_fake.install()
    with mock_aws():
        yield


@pytest.fixture
def source(db):  # type: ignore[no-untyped-def]
    from registry_app.models import RegistrySource

    return RegistrySource.objects.create(name="prod", region="eu-west-1")


@pytest.fixture
def staff_user(django_user_model):  # type: ignore[no-untyped-def]
    return django_user_model.objects.create_user("sam", "sam@example.com", "pw-sam-123!", is_staff=True)


@pytest.fixture
def plain_user(django_user_model):  # type: ignore[no-untyped-def]
    return django_user_model.objects.create_user("olive", "olive@example.com", "pw-olive-123!")


# --- real services for integration and browser tests ------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from registry_app.devtools import aws_fake

    server = aws_fake.start_server("127.0.0.1", 0)  # moto's server with the AWS-faithful layer
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # moto's backends live in this process, shared by every server it starts: begin empty.
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()
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
    """A real worker thread pool on the real broker, consuming every queue of this test process
    (the default queue and the sync/push/audit/email queues, all named per process)."""
    from celery.contrib.testing.worker import start_worker

    from governance.celery import app
    from tests.broker import purge_queues

    queues = sorted(app.amqp.queues)
    purge_queues(app, queues)
    with start_worker(
        app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=30, queues=queues
    ) as worker:
        yield worker
