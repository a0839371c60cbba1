"""The sync flags approvals made outside the dashboard (and only those)."""

from __future__ import annotations

import pytest

from registry_app.mirror.execute import sync_source
from registry_app.models import OutsideDecision, SyncRun
from tests import aws_helpers as h

pytestmark = pytest.mark.django_db


def test_registry_side_approval_is_flagged_first_sync_is_not(
    aws, source, mailoutbox, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group, User

    officer = User.objects.create_user("carol", "carol@acme.example", "x")
    officer.groups.add(Group.objects.get_or_create(name="compliance")[0])
    sm, _ = h.clients()
    h.create_group(sm, "credit-risk")
    h.create_package(sm, "credit-risk", status="Approved")  # approved before the dashboard existed
    pending = h.create_package(sm, "credit-risk")
    with django_capture_on_commit_callbacks(execute=True):
        assert sync_source(source, mode=SyncRun.Mode.FULL).status == SyncRun.Status.SUCCEEDED
    assert not OutsideDecision.objects.exists()

    h.set_status(sm, pending, "Approved", "approved in Studio")  # behind the dashboard's back
    late = h.create_package(sm, "credit-risk", status="Approved")  # registered as Approved directly
    with django_capture_on_commit_callbacks(execute=True):
        sync_source(source, mode=SyncRun.Mode.INCREMENTAL)
    flagged = {(d.package.arn, d.from_status, d.to_status) for d in OutsideDecision.objects.select_related("package")}
    assert flagged == {(pending, "PendingManualApproval", "Approved"), (late, "", "Approved")}
