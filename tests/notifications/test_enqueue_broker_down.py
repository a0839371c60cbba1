"""A broker that is down when a transaction commits never fails the request that committed it."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import transaction

from registry_app.notifications import enqueue

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("enqueue", "task"),
    [
        (lambda: enqueue.enqueue_review_requested(1), "notify_review_requested_task"),
        (lambda: enqueue.enqueue_decided(1), "notify_decided_task"),
        (lambda: enqueue.enqueue_conflict("00000000-0000-0000-0000-000000000001"), "notify_conflict_task"),
    ],
)
def test_enqueue_after_commit_survives_a_broker_outage(enqueue, task, caplog) -> None:  # type: ignore[no-untyped-def]
    with mock.patch(f"registry_app.tasks.{task}.delay", side_effect=ConnectionError("broker down")) as delay:
        with transaction.atomic():
            enqueue()
        # The commit happened and the callback ran (and failed) without raising.
        assert delay.call_count == 1
    assert "broker down" in caplog.text
