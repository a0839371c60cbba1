"""Every persona × action × package state at the service level: only the allowed ones succeed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from registry_app.models import Decision, ModelPackage, PushOutbox, SignOff
from registry_app.permissions import can_archive, can_retry_push, can_revoke
from registry_app.review.decisions import group_archive, package_revoke
from registry_app.review.policy import SignOffNotAllowed
from registry_app.review.push import push_retry
from registry_app.review.signoffs import signoff_create
from tests.factories import ModelPackageFactory

pytestmark = pytest.mark.django_db

PERSONAS = ("mlead", "fair", "comp", "viewer", "nobody", "staff")
ACTIONS = ("approve", "reject", "revoke", "archive", "retry")
STATES = ("pending", "approved", "rejected", "deleted")
SIGN_ROLE = {"mlead": "ml-lead", "fair": "fairness", "comp": "compliance"}
STATUS = {"pending": "PendingManualApproval", "approved": "Approved", "rejected": "Rejected", "deleted": "Approved"}


def allowed(persona: str, action: str, state: str) -> bool:
    if action in ("approve", "reject"):
        return persona in SIGN_ROLE and state == "pending"
    if action == "revoke":
        return persona == "comp" and state == "approved"
    if action == "archive":
        return persona == "comp" and state != "deleted"
    return persona == "staff"  # retry: staff, whatever the package


def make_package(state: str) -> ModelPackage:
    package = ModelPackageFactory(approval_status=STATUS[state])
    if state == "deleted":  # gone from the registry, group and all
        now = timezone.now()
        ModelPackage.objects.filter(pk=package.pk).update(deleted_at=now)
        package.group.__class__.objects.filter(pk=package.group_id).update(deleted_at=now)
        package.refresh_from_db()
        package.group.refresh_from_db()
    return package


def failed_push(package: ModelPackage) -> PushOutbox:
    """A flag push that failed (a failed *decision* push would itself decide the package)."""
    return PushOutbox.objects.create(
        package=package,
        kind=PushOutbox.Kind.FLAGS,
        flags={"MLEngineerApproved": "true"},
        expected_status="PendingManualApproval",
        state=PushOutbox.State.FAILED,
        last_error="ValidationException",
    )


def action_call(action: str, user: Any, persona: str, package: ModelPackage, push: PushOutbox) -> Callable[[], Any]:
    role = SIGN_ROLE.get(persona, "ml-lead")
    if action == "approve":
        return lambda: signoff_create(user=user, package_id=package.pk, role=role, decision="approve", comment="")
    if action == "reject":
        return lambda: signoff_create(user=user, package_id=package.pk, role=role, decision="reject", comment="No.")
    if action == "revoke":
        return lambda: package_revoke(user=user, package_id=package.pk, justification="Leak found")
    if action == "archive":
        return lambda: group_archive(user=user, group_id=package.group_id, justification="Retired")
    return lambda: push_retry(user=user, push_id=push.pk)


def snapshot() -> tuple[int, int, list[str]]:
    return (
        SignOff.objects.count(),
        Decision.objects.count(),
        sorted(f"{p.pk}:{p.state}:{p.expected_status}" for p in PushOutbox.objects.all()),
    )


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("persona", PERSONAS)
def test_matrix(
    personas: dict[str, Any], persona: str, action: str, state: str, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    user = personas[persona]
    package = make_package(state)
    push = failed_push(package)
    before = snapshot()
    call = action_call(action, user, persona, package, push)
    if allowed(persona, action, state):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            call()
        assert snapshot() != before or (action == "archive" and state == "rejected")
        if not (action == "archive" and state == "rejected"):
            assert callbacks, "the push task must be sent after commit"
    else:
        with pytest.raises((SignOffNotAllowed, PermissionDenied, ValueError)) as exc:
            call()
        assert str(exc.value).strip(), "every refusal says why"
        assert snapshot() == before, "a refused action writes nothing"


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("persona", PERSONAS)
def test_permission_helpers_agree_with_the_services(personas: dict[str, Any], persona: str, state: str) -> None:
    user = personas[persona]
    package = make_package(state)
    push = failed_push(package)
    assert can_revoke(user, package) == allowed(persona, "revoke", state)
    assert can_archive(user, package.group) == allowed(persona, "archive", state)
    assert can_retry_push(user, push) == allowed(persona, "retry", state)
    push.state = PushOutbox.State.SENT
    assert can_retry_push(user, push) is False


def test_anonymous_user_can_do_nothing(db: None) -> None:
    from django.contrib.auth.models import AnonymousUser

    package = make_package("approved")
    push = failed_push(package)
    anonymous = AnonymousUser()
    assert not can_revoke(anonymous, package)
    assert not can_archive(anonymous, package.group)
    assert not can_retry_push(anonymous, push)
    with pytest.raises(SignOffNotAllowed):
        signoff_create(user=anonymous, package_id=package.pk, role="ml-lead", decision="approve", comment="")
    with pytest.raises(PermissionDenied):
        package_revoke(user=anonymous, package_id=package.pk, justification="x")
    with pytest.raises(PermissionDenied):
        push_retry(user=anonymous, push_id=push.pk)
