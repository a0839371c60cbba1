"""The sender: SMTP failures back off and retry up to a bound, then fail visibly; claims are exclusive; a
dead worker's rows are sent again after the lease (the one duplicate); sent rows are never re-sent;
rows no longer relevant are cancelled; the .eml file backend."""

from __future__ import annotations

import datetime as dt
import email
import smtplib
from typing import Any
from unittest import mock

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.utils import timezone

from registry_app.models import Notification, NotificationKind, NotificationPreference
from registry_app.notifications import sender
from registry_app.notifications.sender import notifications_send_due, retry_delay
from registry_app.tasks import notify_review_requested_task, sweep_notifications_task

pytestmark = pytest.mark.django_db

State = Notification.State


class FlakyBackend(EmailBackend):
    """locmem, but refuses the first ``failures`` messages to the given address (``refuse``: for good)."""

    failures: dict[str, int] = {}
    refuse: set[str] = set()

    def send_messages(self, messages: Any) -> int:
        for message in messages:
            if message.to[0] in self.refuse:
                raise smtplib.SMTPRecipientsRefused({message.to[0]: (550, b"5.1.1 no such user")})
            left = self.failures.get(message.to[0], 0)
            if left:
                self.failures[message.to[0]] = left - 1
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return super().send_messages(messages)


@pytest.fixture
def flaky(settings: Any, mailoutbox: list[Any]) -> type[FlakyBackend]:
    settings.EMAIL_BACKEND = f"{__name__}.FlakyBackend"
    FlakyBackend.failures, FlakyBackend.refuse = {}, set()
    return FlakyBackend


def _later(**delta: float) -> dt.datetime:
    return timezone.now() + dt.timedelta(**delta)


def test_a_failure_backs_off_and_the_retry_sends_only_the_rest(
    flaky: type[FlakyBackend], reviewers: dict[str, Any], package
) -> None:
    flaky.failures = {"farid@example.com": 1}
    assert notify_review_requested_task.run(package.pk) == 2  # no exception: the row records the failure
    assert sorted(m.to[0] for m in mail.outbox) == ["connie@example.com", "lena@example.com"]
    failed = Notification.objects.get(recipient=reviewers["fairness"])
    assert (failed.state, failed.attempts) == (State.PENDING, 1)
    assert "SMTPServerDisconnected" in failed.last_error
    assert failed.deliver_after > timezone.now() + dt.timedelta(seconds=20)  # 30 s ± 20 %

    assert notifications_send_due().sent == 0  # not before its backoff
    assert notifications_send_due(now=_later(minutes=1)).sent == 1
    assert sorted(m.to[0] for m in mail.outbox) == ["connie@example.com", "farid@example.com", "lena@example.com"]
    failed.refresh_from_db()
    assert (failed.state, failed.attempts, failed.last_error) == (State.SENT, 2, "")


def test_backoff_doubles_up_to_the_cap(settings: Any) -> None:
    settings.NOTIFY_RETRY_BASE_SECONDS, settings.NOTIFY_RETRY_MAX_SECONDS = 30, 3600
    with mock.patch("random.uniform", return_value=1.0):
        assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 7, 8, 30)] == [30, 60, 120, 1920, 3600, 3600]


def test_after_the_bound_the_row_fails_visibly(
    flaky: type[FlakyBackend], settings: Any, reviewers: dict[str, Any], package
) -> None:
    settings.NOTIFY_MAX_ATTEMPTS = 3
    flaky.failures = {"farid@example.com": 99}
    notify_review_requested_task(package.pk)
    for hours in (1, 2, 3, 4):
        notifications_send_due(now=_later(hours=hours))
    row = Notification.objects.get(recipient=reviewers["fairness"])
    assert (row.state, row.attempts) == (State.FAILED, 3)
    assert "SMTPServerDisconnected" in row.last_error
    notifications_send_due(now=_later(days=2))
    row.refresh_from_db()
    assert row.attempts == 3  # failed is final until staff retry


def test_a_recipient_refused_for_good_fails_at_once(
    flaky: type[FlakyBackend], reviewers: dict[str, Any], package
) -> None:
    flaky.refuse = {"farid@example.com"}
    notify_review_requested_task(package.pk)
    row = Notification.objects.get(recipient=reviewers["fairness"])
    assert (row.state, row.attempts) == (State.FAILED, 1)
    assert "550" in row.last_error


def test_sent_rows_are_never_resent(mailoutbox: list[Any], reviewers: dict[str, Any], package) -> None:
    notify_review_requested_task(package.pk)
    Notification.objects.update(deliver_after=timezone.now() - dt.timedelta(days=1), claimed_at=None)
    notify_review_requested_task(package.pk)
    sweep_notifications_task()
    assert len(mailoutbox) == 3


def test_a_claim_is_exclusive(reviewers: dict[str, Any], package) -> None:
    note = Notification.objects.create(
        package=package, kind=NotificationKind.DECIDED, recipient=reviewers["ml-lead"], key="decision:1"
    )
    now = timezone.now()
    target = (note.recipient_id, None)
    first = sender._claim([target], now)
    assert [row.pk for row in first[target]] == [note.pk] and first[target][0].state == State.SENDING
    assert sender._claim([target], now) == {}  # the second worker gets nothing


def test_a_dead_workers_rows_are_sent_again_after_the_lease(
    mailoutbox: list[Any], settings: Any, reviewers: dict[str, Any], package
) -> None:
    """The one duplicate: a worker killed after the SMTP server accepted, before it recorded ``sent``."""
    lena = reviewers["ml-lead"]
    Notification.objects.create(
        package=package,
        kind=NotificationKind.REVIEW_REQUESTED,
        recipient=lena,
        payload={"roles": ["ml-lead"], "policy_name": "default"},
        state=State.SENDING,
        claim="dead-worker",
        claimed_at=timezone.now(),
        attempts=1,
    )
    assert notifications_send_due().sent == 0  # still leased
    later = timezone.now() + dt.timedelta(seconds=settings.NOTIFY_CLAIM_LEASE_SECONDS + 1)
    assert notifications_send_due(now=later).sent == 1
    row = Notification.objects.get(recipient=lena)
    assert (row.state, row.attempts) == (State.SENT, 2) and row.claim != "dead-worker"
    assert [m.to for m in mailoutbox] == [["lena@example.com"]]


def test_a_late_worker_cannot_overwrite_a_reclaimed_row(reviewers: dict[str, Any], package) -> None:
    note = Notification.objects.create(
        package=package, kind=NotificationKind.DECIDED, recipient=reviewers["ml-lead"], key="decision:1"
    )
    now = timezone.now()
    target = (note.recipient_id, None)
    (slow,) = sender._claim([target], now)[target]
    later = now + dt.timedelta(hours=1)
    (fresh,) = sender._claim([target], later)[target]  # the lease expired: re-claimed
    assert sender._finish([slow], State.FAILED, error="late") == 0  # the first worker's outcome is ignored
    assert sender._finish([fresh], State.SENT) == 1


def test_review_requests_for_decided_packages_are_cancelled(
    settings: Any, mailoutbox: list[Any], reviewers: dict[str, Any], package
) -> None:
    settings.NOTIFY_BATCH_SECONDS = 300
    notify_review_requested_task(package.pk)  # collected for 5 minutes
    package.approval_status = "Approved"
    package.save(update_fields=["approval_status"])
    notifications_send_due(now=_later(minutes=6))
    assert mailoutbox == []
    assert set(Notification.objects.values_list("state", flat=True)) == {State.CANCELLED}
    assert "no longer pending" in Notification.objects.first().last_error


def test_preferences_at_send_time_win(mailoutbox: list[Any], settings: Any, reviewers: dict[str, Any], package) -> None:
    settings.NOTIFY_BATCH_SECONDS = 300
    notify_review_requested_task(package.pk)
    NotificationPreference.objects.create(user=reviewers["ml-lead"], opted_out=[NotificationKind.REVIEW_REQUESTED])
    reviewers["compliance"].is_active = False
    reviewers["compliance"].save()
    notifications_send_due(now=_later(minutes=6))
    assert [m.to for m in mailoutbox] == [["farid@example.com"]]
    assert Notification.objects.filter(state=State.CANCELLED).count() == 2


def test_a_worker_that_lost_the_race_sends_nothing_early(settings: Any, reviewers: dict[str, Any], package) -> None:
    """A target whose due rows another worker took is not claimed for its collected (not yet due) rows."""
    settings.NOTIFY_BATCH_SECONDS = 300
    lena = reviewers["ml-lead"]
    Notification.objects.create(package=package, kind=NotificationKind.REVIEW_REQUESTED, recipient=lena)
    Notification.objects.filter(recipient=lena).update(deliver_after=_later(minutes=5))
    assert sender._claim([(lena.pk, None)], timezone.now()) == {}


def test_rows_are_given_back_rather_than_sent_under_a_claim_past_half_its_lease(
    settings: Any, mailoutbox: list[Any], reviewers: dict[str, Any], package
) -> None:
    """The rows of a round are claimed together; right before each send the claim's age is checked, and
    once half the lease has passed the rows are given back (never left for another worker to re-claim
    while this one may still send them)."""
    settings.NOTIFY_CLAIM_LEASE_SECONDS = 2
    for user in reviewers.values():
        Notification.objects.create(package=package, kind=NotificationKind.DECIDED, recipient=user, key="decision:9")
    # deadline; loop; round (send before 0 + 1); message 1; message 2; message 3 is late; the loop ends.
    clock = iter([0.0, 0.0, 0.0, 0.1, 0.1, 0.5, 0.5, 5.0, 5.0, 9.0])
    with mock.patch.object(sender, "_monotonic", side_effect=lambda: next(clock)):
        report = notifications_send_due(max_seconds=8)
    assert (report.sent, report.released, len(mailoutbox)) == (2, 1, 2)
    (left,) = Notification.objects.exclude(state=State.SENT)
    assert (left.state, left.attempts, left.claim) == (State.PENDING, 0, "")
    assert notifications_send_due().sent == 1


def test_one_smtp_connection_for_a_run(
    settings: Any, mailoutbox: list[Any], reviewers: dict[str, Any], package
) -> None:
    with mock.patch("registry_app.notifications.sender.get_connection", wraps=sender.get_connection) as connect:
        notify_review_requested_task(package.pk)
    assert connect.call_count == 1 and len(mailoutbox) == 3


def test_sending_makes_a_constant_number_of_queries_per_message(
    django_assert_max_num_queries: Any, mailoutbox: list[Any], reviewers: dict[str, Any], package
) -> None:
    """Per round: targets, preferences, claim, read, namesake groups; per message: its outcome."""
    from registry_app.notifications.emails import notify_review_requested

    notify_review_requested(package.pk)
    with django_assert_max_num_queries(5 + 3 + 2):
        assert notifications_send_due().sent == 3


def test_the_default_backend_writes_one_eml_file_per_message(
    settings: Any, tmp_path: Any, reviewers: dict[str, Any], package
) -> None:
    settings.EMAIL_BACKEND = "registry_app.notifications.mail_files.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    notify_review_requested_task(package.pk)
    files = sorted((tmp_path / "mail").iterdir())
    assert len(files) == 3 and all(f.suffix == ".eml" for f in files)
    messages = [email.message_from_bytes(f.read_bytes()) for f in files]
    assert {m["Subject"] for m in messages} == {"[Model governance] Review requested: credit-risk v3"}
    assert sorted(m["To"] for m in messages) == ["connie@example.com", "farid@example.com", "lena@example.com"]
    assert all(m.get_content_type() == "multipart/alternative" for m in messages)
    assert {p.get_content_type() for p in messages[0].walk()} >= {"text/plain", "text/html"}


def test_the_default_backend_without_smtp_is_the_eml_one(tmp_path: Any) -> None:
    import secrets
    import subprocess
    import sys

    code = "from django.conf import settings; print(settings.EMAIL_BACKEND)"
    env = {
        "DJANGO_SETTINGS_MODULE": "governance.settings",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "VAR_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.strip() == "registry_app.notifications.mail_files.EmailBackend", out.stderr
