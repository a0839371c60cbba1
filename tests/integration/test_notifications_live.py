"""End to end: a real Celery worker on the real broker sends the notification outbox to a loopback SMTP server
and a loopback HTTP receiver (Slack format, and a generic webhook whose HMAC signature it checks); a broker
that is down when a decision commits loses nothing; a first sync sends one digest per reviewer."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from django.db import transaction

from registry_app.mirror.runs import request_sync
from registry_app.models import Decision, Notification, RegistrySource, SignOff, SyncRun, WebhookEndpoint
from registry_app.notifications import webhooks
from registry_app.notifications.enqueue import enqueue_decided
from registry_app.tasks import notify_decided_task, sweep_notifications_task
from tests import aws_helpers as h
from tests.factories import ModelPackageFactory, ModelPackageGroupFactory
from tests.notifications.loopback import HttpReceiver, SmtpCollector, http_receiver, smtp_server, use_smtp
from tests.personas import make_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SITE = "https://governance.example.test"
SECRET = "integration-signing-secret"
ROLES = ("ml-lead", "fairness", "compliance")


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def channels(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SmtpCollector, HttpReceiver]]:
    settings.SITE_URL = SITE
    with (
        smtp_server() as (smtp, port),
        http_receiver(verify=lambda body, headers: webhooks.verify_signature(SECRET, body, headers)) as http,
    ):
        use_smtp(settings, port)
        monkeypatch.setenv("WEBHOOK_IT_SLACK", http.url("/slack"))
        monkeypatch.setenv("WEBHOOK_IT_SECRET", SECRET)
        WebhookEndpoint.objects.create(name="it-slack", format="slack", url_env="WEBHOOK_IT_SLACK")
        WebhookEndpoint.objects.create(
            name="it-generic", format="generic", url=http.url("/signed/events"), secret_env="WEBHOOK_IT_SECRET"
        )
        yield smtp, http


def _reviewers(per_role: int = 1) -> list[Any]:
    return [make_user(f"{role}-{n}", role) for role in ROLES for n in range(per_role)]


def _decide(package: Any, signer: Any) -> Decision:
    """A decision and its notification rows, in one transaction (as signoff_create does)."""
    with transaction.atomic():
        SignOff.objects.create(package=package, user=signer, role="ml-lead", decision="approve", fingerprint="f")
        decision = Decision.objects.create(package=package, kind=Decision.Kind.POLICY, status="Approved")
        enqueue_decided(decision.pk)
    return decision


def _all_sent() -> bool:
    return Notification.objects.exists() and not Notification.objects.exclude(state=Notification.State.SENT).exists()


def test_a_decision_reaches_email_slack_and_a_signed_webhook(
    channels: tuple[SmtpCollector, HttpReceiver], celery_worker_live: Any
) -> None:
    smtp, http = channels
    lead, *_ = _reviewers()
    package = ModelPackageFactory(group=ModelPackageGroupFactory(name="credit-risk"), version=4)

    decision = _decide(package, lead)

    wait_for(_all_sent, "the worker to send the decision's notifications")
    (_, rcpts, message), *more = smtp.messages
    assert not more and rcpts == ["ml-lead-0@example.com"]
    assert message["Subject"] == "[Model governance] credit-risk v4 approved by the governance policy"
    (slack,) = http.at("/slack")
    text = slack.json()["blocks"][0]["text"]["text"]
    assert f"<{SITE}/packages/credit-risk/4/|Open the review page>" in text
    (event,) = http.at("/signed/events")
    assert event.signature_ok is True  # the receiver recomputed the HMAC over the raw body
    assert event.headers["X-Governance-Event"] == "review.decided"
    assert event.json()["data"]["decision_id"] == decision.pk
    assert sorted(smtp.notification_ids()) == list(
        Notification.objects.filter(recipient__isnull=False).values_list("pk", flat=True).order_by("pk")
    )


def test_a_broker_down_at_commit_loses_nothing(
    channels: tuple[SmtpCollector, HttpReceiver], celery_worker_live: Any
) -> None:
    smtp, http = channels
    lead, *_ = _reviewers()
    package = ModelPackageFactory(group=ModelPackageGroupFactory(name="credit-risk"), version=5)

    with mock.patch.object(notify_decided_task, "delay", side_effect=ConnectionError("broker down")):
        _decide(package, lead)  # committed; the kick failed and was only logged
    time.sleep(1)
    assert smtp.messages == [] and http.received == []
    assert Notification.objects.filter(state=Notification.State.PENDING).count() == 3

    sweep_notifications_task.delay()  # the beat's next tick, once the broker is back

    wait_for(_all_sent, "the sweep to send what the lost kick did not")
    assert len(smtp.messages) == 1 and len(http.at("/slack")) == 1 and len(http.at("/signed/events")) == 1
    assert http.at("/signed/events")[0].signature_ok is True


def test_a_first_sync_sends_one_digest_per_reviewer(
    channels: tuple[SmtpCollector, HttpReceiver], settings: Any, moto_server: str, celery_worker_live: Any
) -> None:
    smtp, http = channels
    settings.NOTIFY_BATCH_SECONDS = 2  # collected for 2 s (after the last package the sync found)
    reviewers = _reviewers(per_role=2)
    sm, _ = h.clients()
    h.create_group(sm, "credit-risk")
    for _ in range(5):
        h.create_package(sm, "credit-risk")
    source = RegistrySource.objects.create(name="it", region=h.REGION)

    run = request_sync(source, mode=SyncRun.Mode.FULL, trigger=SyncRun.Trigger.MANUAL)
    wait_for(lambda: SyncRun.objects.get(pk=run.pk).status == SyncRun.Status.SUCCEEDED, "the first sync")
    assert Notification.objects.count() == 5 * 6 + 5 * 2  # e-mail rows, Slack rows, generic webhook rows
    time.sleep(2.5)
    sweep_notifications_task.delay()

    wait_for(_all_sent, "the sweep to send the digests")
    assert sorted(rcpt for _, rcpts, _ in smtp.messages for rcpt in rcpts) == sorted(u.email for u in reviewers)
    assert {message["Subject"] for _, _, message in smtp.messages} == {"[Model governance] 5 packages need your review"}
    (slack,) = http.at("/slack")  # one Slack message, not five
    assert "5 packages need your review" in slack.json()["text"]
    events = http.at("/signed/events")  # machines get every event, each signed
    assert len(events) == 5 and all(event.signature_ok for event in events)
    assert {event.headers["X-Governance-Event"] for event in events} == {"review.requested"}
