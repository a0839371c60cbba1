"""registry_app.notifications.enqueue: each task goes out after commit, with ids only; a broker that is down when
a transaction commits never fails the request that committed it."""

from __future__ import annotations

import uuid
from typing import Any
from unittest import mock

import pytest
from django.db import transaction

from registry_app.notifications.enqueue import enqueue_conflict, enqueue_decided, enqueue_review_requested
from registry_app.tasks import notify_conflict_task, notify_decided_task, notify_review_requested_task


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("enqueue", "task"),
    [
        (lambda: enqueue_review_requested(1), "notify_review_requested_task"),
        (lambda: enqueue_decided(1), "notify_decided_task"),
        (lambda: enqueue_conflict("00000000-0000-0000-0000-000000000001"), "notify_conflict_task"),
    ],
)
def test_enqueue_after_commit_survives_a_broker_outage(enqueue, task, caplog) -> None:  # type: ignore[no-untyped-def]
    with mock.patch(f"registry_app.tasks.{task}.delay", side_effect=ConnectionError("broker down")) as delay:
        with transaction.atomic():
            enqueue()
        # The commit happened and the callback ran (and failed) without raising.
        assert delay.call_count == 1
    assert "broker down" in caplog.text


@pytest.mark.django_db
def test_enqueue_waits_for_commit(django_capture_on_commit_callbacks: Any, package) -> None:
    with mock.patch.object(notify_review_requested_task, "delay") as delay:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            enqueue_review_requested(package.pk)
        delay.assert_not_called()
        assert len(callbacks) == 1
        callbacks[0]()
    delay.assert_called_once_with(package.pk)


@pytest.mark.django_db
def test_enqueue_then_commit_runs_the_task(
    django_capture_on_commit_callbacks: Any, eager: None, mailoutbox: list[Any], reviewers: dict[str, Any], package
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_review_requested(package.pk)
        enqueue_review_requested(package.pk)  # a re-sync in the same transaction
    assert len(mailoutbox) == 3


@pytest.mark.django_db
def test_enqueue_decided_and_conflict_pass_ids_after_commit(django_capture_on_commit_callbacks: Any, package) -> None:
    push_id = uuid.uuid4()
    with (
        mock.patch.object(notify_decided_task, "delay") as decided,
        mock.patch.object(notify_conflict_task, "delay") as conflict,
        django_capture_on_commit_callbacks(execute=True),
    ):
        enqueue_decided(7)
        enqueue_conflict(push_id)
        decided.assert_not_called()
        conflict.assert_not_called()
    decided.assert_called_once_with(7)
    conflict.assert_called_once_with(str(push_id))
