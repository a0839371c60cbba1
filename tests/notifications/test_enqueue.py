"""registry_app.notifications.enqueue: the rows are written in the caller's transaction (and rolled back with
it); the worker is kicked after commit with ids only; a broker that is down at commit loses nothing (the
beat sweep sends the rows) and never fails the request that committed."""

from __future__ import annotations

import uuid
from typing import Any
from unittest import mock

import pytest
from django.db import transaction

from registry_app.models import Decision, Notification, NotificationKind, PushOutbox, SignOff
from registry_app.notifications.enqueue import enqueue_conflict, enqueue_decided, enqueue_review_requested
from registry_app.tasks import (
    notify_conflict_task,
    notify_decided_task,
    notify_review_requested_task,
    sweep_notifications_task,
)


def _decision(package: Any, reviewers: dict[str, Any]) -> Decision:
    SignOff.objects.create(
        package=package, user=reviewers["ml-lead"], role="ml-lead", decision="approve", fingerprint="f"
    )
    return Decision.objects.create(package=package, kind=Decision.Kind.POLICY, status="Approved")


def _conflict(package: Any, reviewers: dict[str, Any]) -> PushOutbox:
    SignOff.objects.create(
        package=package, user=reviewers["ml-lead"], role="ml-lead", decision="approve", fingerprint="f"
    )
    return PushOutbox.objects.create(
        package=package, kind="decision", expected_status="PendingManualApproval", state=PushOutbox.State.CONFLICT
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("event", ["review_requested", "decided", "conflict"])
def test_a_broker_outage_at_commit_loses_no_email(
    event: str, reviewers: dict[str, Any], package, mailoutbox: list[Any], caplog: Any
) -> None:
    tasks = {
        "review_requested": (notify_review_requested_task, lambda: enqueue_review_requested(package.pk)),
        "decided": (notify_decided_task, lambda: enqueue_decided(_decision(package, reviewers).pk)),
        "conflict": (notify_conflict_task, lambda: enqueue_conflict(_conflict(package, reviewers).pk)),
    }
    task, enqueue = tasks[event]
    with mock.patch.object(task, "delay", side_effect=ConnectionError("broker down")) as delay:
        with transaction.atomic():
            enqueue()
        assert delay.call_count == 1  # the commit happened and the kick failed, without raising
    assert "broker down" in caplog.text
    assert mailoutbox == []
    waiting = Notification.objects.filter(state=Notification.State.PENDING)
    assert waiting.exists()

    sweep_notifications_task()  # beat, once the broker is back

    assert not Notification.objects.exclude(state=Notification.State.SENT).exists()
    assert sorted(m.to[0] for m in mailoutbox) == sorted(
        u.email for u in {n.recipient for n in Notification.objects.select_related("recipient")}
    )


@pytest.mark.django_db
def test_rows_are_written_in_the_transaction_and_the_kick_waits_for_commit(
    django_capture_on_commit_callbacks: Any, reviewers: dict[str, Any], package
) -> None:
    with mock.patch.object(notify_review_requested_task, "delay") as delay:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            enqueue_review_requested(package.pk)
            assert Notification.objects.filter(package=package).count() == 3  # inside the transaction
        delay.assert_not_called()
        assert len(callbacks) == 1
        callbacks[0]()
    delay.assert_called_once_with(package.pk)


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_leaves_no_rows_and_sends_nothing(reviewers: dict[str, Any], package) -> None:
    with (
        mock.patch.object(notify_decided_task, "delay") as delay,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        enqueue_decided(_decision(package, reviewers).pk)
        assert Notification.objects.count() == 1
        raise RuntimeError("the sign-off failed after all")
    assert Notification.objects.count() == 0
    delay.assert_not_called()


@pytest.mark.django_db
def test_enqueue_then_commit_runs_the_task(
    django_capture_on_commit_callbacks: Any, eager: None, mailoutbox: list[Any], reviewers: dict[str, Any], package
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_review_requested(package.pk)
        enqueue_review_requested(package.pk)  # a re-sync in the same transaction: no second row
    assert len(mailoutbox) == 3
    assert Notification.objects.count() == 3


@pytest.mark.django_db
def test_enqueue_decided_and_conflict_pass_ids_after_commit(
    django_capture_on_commit_callbacks: Any, reviewers: dict[str, Any], package
) -> None:
    decision = _decision(package, reviewers)
    push = _conflict(package, reviewers)
    with (
        mock.patch.object(notify_decided_task, "delay") as decided,
        mock.patch.object(notify_conflict_task, "delay") as conflict,
        django_capture_on_commit_callbacks(execute=True),
    ):
        enqueue_decided(decision.pk)
        enqueue_conflict(push.pk)
        decided.assert_not_called()
        conflict.assert_not_called()
    decided.assert_called_once_with(decision.pk)
    conflict.assert_called_once_with(str(push.pk))
    assert set(Notification.objects.values_list("kind", "key")) == {
        (NotificationKind.DECIDED, f"decision:{decision.pk}"),
        (NotificationKind.CONFLICT, f"push:{push.pk}"),
    }


@pytest.mark.django_db
def test_nothing_to_tell_writes_nothing_and_kicks_nothing(django_capture_on_commit_callbacks: Any, package) -> None:
    """Nobody holds a role, signed or watches: no row, no task."""
    with (
        mock.patch.object(notify_decided_task, "delay") as decided,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        enqueue_decided(Decision.objects.create(package=package, kind="policy", status="Approved").pk)
        enqueue_conflict(uuid.uuid4())
        enqueue_review_requested(package.pk)
    assert callbacks == [] and not decided.called
    assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_a_failure_writing_rows_never_breaks_the_callers_transaction(
    reviewers: dict[str, Any], package, caplog: Any
) -> None:
    with (
        mock.patch.object(Notification.objects, "bulk_create", side_effect=RuntimeError("boom")),
        transaction.atomic(),
    ):
        enqueue_review_requested(package.pk)
        package.refresh_from_db()  # the transaction is still usable
    assert "could not write the review_requested (package" in caplog.text
