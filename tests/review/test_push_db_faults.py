"""Delivery when the database connection drops mid-push (found by benchmarks/soak_bench.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import OperationalError

from registry_app.models import PushOutbox
from registry_app.review import push as push_service
from registry_app.review.push import push_execute
from registry_app.review.signoffs import signoff_create
from tests.review.conftest import Registry, UpdateCounter

pytestmark = pytest.mark.django_db

State = PushOutbox.State


def test_connection_lost_after_the_update_goes_back_to_pending_and_is_sent_once(  # type: ignore[no-untyped-def]
    registry: Registry, personas, updates: UpdateCounter, monkeypatch
) -> None:
    """The update went through, then recording it failed on a terminated connection: the row is
    pending again (not failed, which would wait for staff), the task retries on that error, and
    the retry finds the update applied instead of writing it twice."""
    package = registry.package("pending")
    push = signoff_create(
        user=personas["fair"], package_id=package.pk, role="fairness", decision="approve", comment=""
    ).pushes[0]
    original = push_service._Claim.finish

    def connection_dropped(self: Any, state: str, **fields: Any) -> bool:
        if state == State.SENT:
            raise OperationalError("terminating connection due to administrator command")
        return original(self, state, **fields)

    monkeypatch.setattr(push_service._Claim, "finish", connection_dropped)
    with pytest.raises(OperationalError):
        push_execute(push.pk)
    monkeypatch.setattr(push_service._Claim, "finish", original)
    push.refresh_from_db()
    assert push.state == State.PENDING
    assert "Database connection lost" in push.last_error
    assert updates.count == 1

    assert push_execute(push.pk).state == State.SENT
    push.refresh_from_db()
    assert "Already applied" in push.last_error
    assert updates.count == 1  # exactly once
    assert registry.describe("pending")["CustomerMetadataProperties"]["FairnessApproved"] == "true"


def test_push_task_retries_on_a_dropped_database_connection() -> None:
    from registry_app.tasks import push_task

    assert OperationalError in push_task.autoretry_for
