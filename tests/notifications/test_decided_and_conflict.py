"""Decisions and push conflicts are told to the package's signers and the group's watchers."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from registry_app.models import (
    Decision,
    GroupWatcher,
    Notification,
    NotificationKind,
    NotificationPreference,
    PushOutbox,
    SignOff,
)
from registry_app.tasks import notify_conflict_task, notify_decided_task
from tests.factories import ModelPackageFactory

from .conftest import SITE, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def audience(reviewers: dict[str, Any], outsider: Any, package) -> dict[str, Any]:
    """Two signers (one signed twice), a watcher, a watcher of another group, a bystander (outsider)."""
    for role in ("ml-lead", "fairness"):
        SignOff.objects.create(package=package, user=reviewers[role], role=role, decision="approve", fingerprint="f")
    SignOff.objects.create(
        package=package, user=reviewers["fairness"], role="fairness", decision="approve", fingerprint="g"
    )
    watcher = make_user("wanda")
    GroupWatcher.objects.create(user=watcher, group=package.group)
    elsewhere = make_user("elsie")
    GroupWatcher.objects.create(user=elsewhere, group=ModelPackageFactory().group)
    return {"watcher": watcher}


EXPECTED = ["farid@example.com", "lena@example.com", "wanda@example.com"]


@pytest.mark.parametrize(
    ("kind", "status", "verb"),
    [
        (Decision.Kind.POLICY, "Approved", "approved"),
        (Decision.Kind.REJECTION, "Rejected", "rejected"),
        (Decision.Kind.REVOCATION, "Rejected", "revoked"),
        (Decision.Kind.ARCHIVE, "Rejected", "archived"),
    ],
)
def test_decision_told_to_signers_and_watchers(
    mailoutbox: list[Any],
    audience: dict[str, Any],
    reviewers: dict[str, Any],
    package,
    kind: str,
    status: str,
    verb: str,
) -> None:
    decision = Decision.objects.create(
        package=package,
        kind=kind,
        status=status,
        description="Because <reasons> & more",
        decided_by=reviewers["compliance"],
    )
    assert notify_decided_task(decision.pk) == 3
    assert sorted(m.to[0] for m in mailoutbox) == EXPECTED
    message = mailoutbox[0]
    assert message.subject == f"[Model governance] credit-risk v3 {verb} by connie"
    assert f"was {verb} by connie" in message.body
    assert f"registry status to {status}" in message.body
    assert f"{SITE}/packages/credit-risk/3/" in message.body
    html = message.alternatives[0][0]
    assert f"<strong>{verb}</strong>" in html
    assert "Because &lt;reasons&gt; &amp; more" in html and "Because <reasons> & more" in message.body


def test_policy_decision_without_a_person(mailoutbox: list[Any], audience: dict[str, Any], package) -> None:
    decision = Decision.objects.create(package=package, kind=Decision.Kind.POLICY, status="Approved")
    notify_decided_task(decision.pk)
    assert mailoutbox[0].subject.endswith("approved by the governance policy")


def test_decision_is_idempotent_but_each_decision_is_new(
    mailoutbox: list[Any], audience: dict[str, Any], package
) -> None:
    first = Decision.objects.create(package=package, kind=Decision.Kind.POLICY, status="Approved")
    notify_decided_task(first.pk)
    notify_decided_task(first.pk)
    assert len(mailoutbox) == 3
    revoked = Decision.objects.create(package=package, kind=Decision.Kind.REVOCATION, status="Rejected")
    notify_decided_task(revoked.pk)
    assert len(mailoutbox) == 6
    # A revocation is its own kind (its own preference, its own webhook event).
    assert set(Notification.objects.filter(key=f"decision:{revoked.pk}").values_list("kind", flat=True)) == {
        NotificationKind.REVOKED
    }


def test_opted_out_and_emailless_are_skipped(
    mailoutbox: list[Any], audience: dict[str, Any], reviewers: dict[str, Any], package
) -> None:
    NotificationPreference.objects.create(user=reviewers["ml-lead"], opted_out=[NotificationKind.DECIDED])
    GroupWatcher.objects.create(user=make_user("silent", email=""), group=package.group)
    decision = Decision.objects.create(package=package, kind=Decision.Kind.POLICY, status="Approved")
    notify_decided_task(decision.pk)
    assert sorted(m.to[0] for m in mailoutbox) == ["farid@example.com", "wanda@example.com"]


def _conflict(package: Any, **extra: Any) -> PushOutbox:
    return PushOutbox.objects.create(
        package=package,
        kind=PushOutbox.Kind.DECISION,
        target_status="Approved",
        expected_status="PendingManualApproval",
        acting_username="connie",
        state=PushOutbox.State.CONFLICT,
        conflict_detail={"found_status": "Rejected", "modified_by": "arn:aws:iam::1:user/<ops>"},
        **extra,
    )


def test_conflict_told_to_signers_and_watchers(mailoutbox: list[Any], audience: dict[str, Any], package) -> None:
    push = _conflict(package)
    assert notify_conflict_task(str(push.pk)) == 3
    assert sorted(m.to[0] for m in mailoutbox) == EXPECTED
    message = mailoutbox[0]
    assert "NOT applied" in message.subject and "changed outside the dashboard" in message.subject
    assert "changed outside the dashboard" in message.body
    assert "expected PendingManualApproval but found Rejected" in message.body
    assert "(to Approved) on behalf of connie was NOT applied" in message.body
    html = message.alternatives[0][0]
    assert "<strong>NOT applied</strong>" in html and "user/&lt;ops&gt;" in html


def test_conflict_idempotent_and_only_for_conflicts(mailoutbox: list[Any], audience: dict[str, Any], package) -> None:
    push = _conflict(package)
    notify_conflict_task(str(push.pk))
    notify_conflict_task(str(push.pk))
    assert len(mailoutbox) == 3
    assert set(Notification.objects.filter(kind=NotificationKind.CONFLICT).values_list("key", flat=True)) == {
        f"push:{push.pk}"
    }
    sent = PushOutbox.objects.create(
        package=package, kind=PushOutbox.Kind.DECISION, expected_status="PendingManualApproval", state="sent"
    )
    assert notify_conflict_task(str(sent.pk)) == 0
    assert notify_conflict_task(str(uuid.uuid4())) == 0
    assert len(mailoutbox) == 3
