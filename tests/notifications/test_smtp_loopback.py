"""One real SMTP conversation: aiosmtpd on 127.0.0.1, Django's SMTP backend, the Celery task body."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from registry_app.models import Notification
from registry_app.tasks import notify_review_requested_task

from .conftest import SITE
from .loopback import SmtpCollector, smtp_server, use_smtp

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp(settings: Any) -> Iterator[SmtpCollector]:
    with smtp_server() as (handler, port):
        use_smtp(settings, port)
        yield handler


def test_task_delivers_multipart_mail_over_smtp(smtp: SmtpCollector, reviewers: dict[str, Any], package) -> None:
    assert notify_review_requested_task(package.pk) == 3

    assert sorted(rcpt for _, rcpts, _ in smtp.messages for rcpt in rcpts) == [
        "connie@example.com",
        "farid@example.com",
        "lena@example.com",
    ]
    sender, _, message = next(m for m in smtp.messages if m[1] == ["lena@example.com"])
    assert sender == "governance@example.test"
    assert message["Subject"] == "[Model governance] Review requested: credit-risk v3"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Governance-Notification"] == str(Notification.objects.get(recipient=reviewers["ml-lead"]).pk)
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
    assert len(smtp.messages) == 3
    assert sorted(smtp.notification_ids()) == sorted(Notification.objects.values_list("pk", flat=True))
