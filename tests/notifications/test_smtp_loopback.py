"""One real SMTP conversation: aiosmtpd on 127.0.0.1, Django's SMTP backend, the Celery task body."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from registry_app.models import Notification
from registry_app.tasks import notify_review_requested_task

from .conftest import SITE

pytestmark = pytest.mark.django_db


class Collector:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd hook name)
        content = envelope.original_content or envelope.content
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), email.message_from_bytes(content)))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[Collector, int]]:
    handler = Collector()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def test_task_delivers_multipart_mail_over_smtp(
    settings: Any, smtp_server: tuple[Collector, int], reviewers: dict[str, Any], package
) -> None:
    handler, port = smtp_server
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 10

    assert notify_review_requested_task(package.pk) == 3

    assert sorted(rcpt for _, rcpts, _ in handler.messages for rcpt in rcpts) == [
        "connie@example.com",
        "farid@example.com",
        "lena@example.com",
    ]
    sender, _, message = next(m for m in handler.messages if m[1] == ["lena@example.com"])
    assert sender == "governance@example.test"
    assert message["Subject"] == "[Model governance] Review requested: credit-risk v3"
    assert message.is_multipart() and message.get_content_type() == "multipart/alternative"
    parts = {
        part.get_content_type(): part.get_payload(decode=True).decode()
        for part in message.walk()
        if not part.is_multipart()
    }
    assert f"{SITE}/packages/credit-risk/3/" in parts["text/plain"]
    assert f'href="{SITE}/packages/credit-risk/3/"' in parts["text/html"]
    assert set(Notification.objects.values_list("state", flat=True)) == {Notification.State.SENT}

    notify_review_requested_task(package.pk)  # a re-run sends nothing more
    assert len(handler.messages) == 3
