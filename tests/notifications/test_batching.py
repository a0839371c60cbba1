"""No floods: review requests within a few minutes go to a person as one e-mail, the daily digest waits for
its hour, and the first sync of a source sends one digest per reviewer (500 pending packages: 6 e-mails)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from registry_app.models import (
    Decision,
    Notification,
    NotificationKind,
    NotificationPreference,
    SignOff,
    WebhookEndpoint,
)
from registry_app.models.registry import ApprovalStatus
from registry_app.notifications.emails import notify_decided, notify_review_requested
from registry_app.notifications.outbox import next_digest_at
from registry_app.notifications.sender import notifications_send_due
from tests.factories import ModelPackageFactory, ModelPackageGroupFactory, SyncRunFactory

from .conftest import SITE, make_user
from .loopback import HttpReceiver, http_receiver

pytestmark = pytest.mark.django_db

WINDOW = 300
T0 = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)


def at(**delta: float) -> dt.datetime:
    return T0 + dt.timedelta(**delta)


@pytest.fixture(autouse=True)
def window(settings: Any) -> None:
    settings.NOTIFY_BATCH_SECONDS = WINDOW
    settings.NOTIFY_DIGEST_HOUR_UTC = 7


def _pending(group: Any, version: int) -> Any:
    return ModelPackageFactory(group=group, version=version, approval_status=ApprovalStatus.PENDING)


@pytest.fixture
def group(db: None) -> Any:
    group = ModelPackageGroupFactory(name="credit-risk")
    SyncRunFactory(source=group.source)  # the source was mirrored before: not its first sync
    return group


def test_review_requests_within_the_window_go_as_one_email(
    mailoutbox: list[Any], reviewers: dict[str, Any], group: Any
) -> None:
    for minutes, version in ((0, 1), (2, 2), (4, 3)):
        notify_review_requested(_pending(group, version).pk, now=at(minutes=minutes))
    assert notifications_send_due(now=at(minutes=4, seconds=59)).messages == 0
    report = notifications_send_due(now=at(minutes=5))
    assert (report.messages, report.sent) == (3, 9)  # one e-mail per reviewer, telling 3 packages
    message = next(m for m in mailoutbox if m.to == ["lena@example.com"])
    assert message.subject == "[Model governance] 3 packages need your review"
    for version in (1, 2, 3):
        assert f"credit-risk v{version}" in message.body
        assert f"{SITE}/packages/credit-risk/{version}/" in message.body
        assert f'href="{SITE}/packages/credit-risk/{version}/"' in message.alternatives[0][0]
    assert f"{SITE}/queue/" in message.body

    notify_review_requested(_pending(group, 4).pk, now=at(minutes=7))  # a new batch
    assert notifications_send_due(now=at(minutes=11)).messages == 0
    assert notifications_send_due(now=at(minutes=12)).messages == 3
    assert len(mailoutbox) == 6


def test_a_single_review_request_is_the_plain_review_email(
    mailoutbox: list[Any], reviewers: dict[str, Any], group: Any
) -> None:
    notify_review_requested(_pending(group, 1).pk, now=at())
    notifications_send_due(now=at(minutes=5))
    assert {m.subject for m in mailoutbox} == {"[Model governance] Review requested: credit-risk v1"}


def test_a_decision_takes_the_collected_review_requests_along(
    mailoutbox: list[Any], reviewers: dict[str, Any], group: Any
) -> None:
    """Something going to a person now takes what is collected for them: one e-mail, not two."""
    notify_review_requested(_pending(group, 1).pk, now=at())
    decided = _pending(group, 2)
    SignOff.objects.create(package=decided, user=reviewers["ml-lead"], role="ml-lead", decision="approve")
    decision = Decision.objects.create(package=decided, kind="policy", status="Approved")
    notify_decided(decision.pk, now=at(minutes=1))
    notifications_send_due(now=at(minutes=1))
    (message,) = mailoutbox
    assert message.to == ["lena@example.com"]
    assert message.subject == "[Model governance] 2 notifications: 1 decided, 1 waiting for review"
    assert "credit-risk v2: approved by the governance policy" in message.body


def test_the_daily_digest_waits_for_its_hour(mailoutbox: list[Any], reviewers: dict[str, Any], group: Any) -> None:
    lena = reviewers["ml-lead"]
    NotificationPreference.objects.create(user=lena, daily=[NotificationKind.REVIEW_REQUESTED])
    for minutes, version in ((0, 1), (90, 2)):
        notify_review_requested(_pending(group, version).pk, now=at(minutes=minutes))
    assert next_digest_at(T0) == dt.datetime(2026, 11, 25, 7, 0, tzinfo=dt.UTC)
    notifications_send_due(now=at(hours=3))
    assert "lena@example.com" not in [m.to[0] for m in mailoutbox]  # the others had theirs
    assert len(mailoutbox) == 2

    notifications_send_due(now=dt.datetime(2026, 11, 25, 7, 0, tzinfo=dt.UTC))
    (digest,) = [m for m in mailoutbox if m.to == ["lena@example.com"]]
    assert digest.subject == "[Model governance] 2 packages need your review"
    assert "daily digest" in digest.body


def test_a_daily_kind_never_rides_along_with_an_immediate_one(
    mailoutbox: list[Any], reviewers: dict[str, Any], group: Any
) -> None:
    lena = reviewers["ml-lead"]
    NotificationPreference.objects.create(user=lena, daily=[NotificationKind.REVIEW_REQUESTED])
    notify_review_requested(_pending(group, 1).pk, now=at())
    decided = _pending(group, 2)
    SignOff.objects.create(package=decided, user=lena, role="ml-lead", decision="approve")
    notify_decided(Decision.objects.create(package=decided, kind="policy", status="Approved").pk, now=at())
    notifications_send_due(now=at(minutes=1))
    (message,) = [m for m in mailoutbox if m.to == ["lena@example.com"]]
    assert message.subject == "[Model governance] credit-risk v2 approved by the governance policy"
    assert Notification.objects.get(recipient=lena, kind=NotificationKind.REVIEW_REQUESTED).state == "pending"


def test_the_first_sync_collects_while_packages_keep_arriving(mailoutbox: list[Any], reviewers: dict[str, Any]) -> None:
    group = ModelPackageGroupFactory(name="credit-risk")  # its source never synced
    for minutes, version in ((0, 1), (4, 2), (8, 3)):  # each within a window of the previous one
        notify_review_requested(_pending(group, version).pk, now=at(minutes=minutes))
    assert notifications_send_due(now=at(minutes=12)).messages == 0
    assert notifications_send_due(now=at(minutes=13)).messages == 3
    assert {m.subject for m in mailoutbox} == {"[Model governance] 3 packages need your review"}


def test_the_first_sync_hold_is_bounded(settings: Any, mailoutbox: list[Any], reviewers: dict[str, Any]) -> None:
    settings.NOTIFY_FIRST_SYNC_MAX_HOLD_SECONDS = 600
    group = ModelPackageGroupFactory(name="credit-risk")
    sent_by: dict[int, int] = {}
    for step in range(8):  # a package every 4 minutes for half an hour
        notify_review_requested(_pending(group, step + 1).pk, now=at(minutes=4 * step))
        sent_by[4 * step] = notifications_send_due(now=at(minutes=4 * step)).messages
    assert sum(sent_by.values()) > 0  # the oldest went out after at most the hold and a window
    assert min(minute for minute, n in sent_by.items() if n) <= 16


# --------------------------------------------------------------------------------------------- 500 packages


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpReceiver]:
    with http_receiver() as receiver:
        monkeypatch.setenv("WEBHOOK_SLACK_FAIRNESS", receiver.url("/slack/fairness"))
        WebhookEndpoint.objects.create(
            name="fairness-channel", format="slack", url_env="WEBHOOK_SLACK_FAIRNESS", role="fairness"
        )
        yield receiver


def test_the_first_sync_of_500_pending_packages_sends_one_digest_per_reviewer(
    aws: None, source: Any, mailoutbox: list[Any], slack: HttpReceiver, django_assert_max_num_queries: Any
) -> None:
    from registry_app.mirror.execute import sync_source
    from tests import aws_helpers as h

    for role in ("ml-lead", "fairness", "compliance"):
        for n in (1, 2):
            make_user(f"{role}-{n}", role)
    sm, _ = h.clients()
    for g in range(10):
        h.create_group(sm, f"model-{g}")
        for _ in range(50):
            h.create_package(sm, f"model-{g}")

    run = sync_source(source, mode="full")

    assert run.status == "succeeded", (run.error, run.errors)
    assert Notification.objects.filter(kind=NotificationKind.REVIEW_REQUESTED).count() == 500 * 6 + 500
    assert notifications_send_due().messages == 0  # still collecting
    later = timezone.now() + dt.timedelta(seconds=WINDOW + 1)
    with django_assert_max_num_queries(7 + 6):  # one per message, plus a few per round: not per package
        report = notifications_send_due(now=later)
    assert (report.messages, report.sent) == (7, 3500)
    assert len(mailoutbox) == 6  # not 3,000
    assert sorted(m.to[0] for m in mailoutbox) == sorted(
        f"{r}-{n}@example.com" for r in ("ml-lead", "fairness", "compliance") for n in (1, 2)
    )
    message = mailoutbox[0]
    assert message.subject == "[Model governance] 500 packages need your review"
    assert "...and 300 more" in message.body  # 200 listed, then the queue
    (post,) = slack.at("/slack/fairness")
    assert "500 packages need your review" in post.json()["text"]
    assert not Notification.objects.exclude(state=Notification.State.SENT).exists()
