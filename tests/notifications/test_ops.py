"""Operators see the outbox: failed notifications on /sync/ (staff send them again) and in /metrics."""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.utils import timezone

from registry_app.models import Notification, NotificationKind, WebhookEndpoint
from registry_app.notifications.outbox import outbox_retry_failed
from registry_app.notifications.selectors import outbox_overview
from registry_app.tasks import sweep_notifications_task

from .conftest import make_user

pytestmark = pytest.mark.django_db

State = Notification.State


@pytest.fixture
def failed(reviewers: dict[str, Any], package) -> Notification:
    Notification.objects.create(
        package=package, kind=NotificationKind.DECIDED, recipient=reviewers["fairness"], key="decision:1", state="sent"
    )
    Notification.objects.create(
        package=package,
        kind=NotificationKind.REVIEW_REQUESTED,
        recipient=reviewers["compliance"],
        deliver_after=timezone.now() - dt.timedelta(minutes=3),
    )
    hook = WebhookEndpoint.objects.create(name="ops-slack", format="slack", url_env="WEBHOOK_OPS")
    Notification.objects.create(package=package, kind=NotificationKind.DECIDED, webhook=hook, key="decision:1")
    return Notification.objects.create(
        package=package,
        kind=NotificationKind.DECIDED,
        recipient=reviewers["ml-lead"],
        key="decision:1",
        state=State.FAILED,
        attempts=8,
        last_error="SMTPServerDisconnected: <b>Connection unexpectedly closed</b>",
    )


def test_the_overview_counts_states_and_lists_failures(failed: Notification) -> None:
    overview = outbox_overview()
    assert overview.counts == {"pending": 2, "sending": 0, "sent": 1, "failed": 1, "cancelled": 0}
    assert overview.failed == [failed] and overview.failed_count == 1 and overview.waiting == 2
    assert overview.oldest_due_seconds == pytest.approx(180, abs=5)


def test_sync_page_shows_failed_notifications_and_staff_send_them_again(
    failed: Notification, mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    staff = make_user("sam", is_staff=True)
    client = Client()
    client.force_login(staff)
    html = client.get("/sync/").content.decode()
    assert 'id="notifications"' in html and "1 notification failed for good" in html
    assert "lena" in html and "&lt;b&gt;Connection unexpectedly closed&lt;/b&gt;" in html
    assert 'action="/sync/notifications/retry/"' in html

    with (
        mock.patch.object(sweep_notifications_task, "delay") as sweep,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post("/sync/notifications/retry/")
    assert response.status_code == 302 and response["Location"] == "/sync/"
    sweep.assert_called_once_with()
    failed.refresh_from_db()
    assert (failed.state, failed.attempts) == (State.PENDING, 0)
    assert "No failed notification." in client.get("/sync/").content.decode()


def test_only_staff_may_send_them_again(failed: Notification) -> None:
    client = Client()
    client.force_login(make_user("viewer-1", "viewer"))
    html = client.get("/sync/").content.decode()
    assert "1 notification failed for good" in html and "/sync/notifications/retry/" not in html
    assert "Connection unexpectedly closed" not in html and "lena" not in html  # staff only: names addresses
    assert client.post("/sync/notifications/retry/").status_code == 403
    assert client.get("/sync/notifications/retry/").status_code == 405
    with pytest.raises(PermissionDenied):
        outbox_retry_failed(user=make_user("viewer-2"))
    failed.refresh_from_db()
    assert failed.state == State.FAILED


def test_metrics_show_the_outbox(failed: Notification, settings: Any) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from registry_app.ops.metrics import GovernanceCollector

    registry = CollectorRegistry()
    registry.register(GovernanceCollector())
    text = generate_latest(registry).decode()
    assert 'governance_notification_emails{kind="decided",state="failed"} 1.0' in text
    assert 'governance_notification_emails{kind="review_requested",state="pending"} 1.0' in text
    assert 'governance_webhook_deliveries{state="pending",webhook="ops-slack"} 1.0' in text
    age = next(line for line in text.splitlines() if line.startswith("governance_notification_oldest_due_age_seconds "))
    assert 170 < float(age.split()[1]) < 200


def test_the_sweep_task_sends_what_is_due(failed: Notification, mailoutbox: list[Any], monkeypatch: Any) -> None:
    monkeypatch.setenv("WEBHOOK_OPS", "http://127.0.0.1:9/unreachable")
    assert sweep_notifications_task() == 1  # the review request to connie; the webhook retries later
    assert [m.to for m in mailoutbox] == [["connie@example.com"]]
    assert Notification.objects.get(webhook__name="ops-slack").state == State.PENDING
