"""Decisions made outside the dashboard: flagged, matched to CloudTrail, one email to compliance."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from registry_app.audit import outside_decisions as bypasses
from registry_app.audit.chain import verify_audit_chain
from registry_app.audit.outside_decisions import (
    attach_cloudtrail_evidence,
    outside_decisions_notify_pending,
    package_observed_status_change,
    record_outside_decision,
)
from registry_app.models import AuditLogEntry, OutsideDecision, PushOutbox
from registry_app.models.registry import ApprovalStatus
from tests.audit.builders import push, status_call
from tests.audit.conftest import make_user

pytestmark = pytest.mark.django_db

PENDING, APPROVED, REJECTED = ApprovalStatus.PENDING, ApprovalStatus.APPROVED, ApprovalStatus.REJECTED


@pytest.fixture(autouse=True)
def _mail(settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = "https://governance.example.test"


@pytest.fixture
def officers(db: None) -> list[Any]:
    return [make_user("connie", "compliance"), make_user("cora", "compliance"), make_user("lena", "ml-lead")]


def test_status_change_without_push_is_flagged_and_mailed_once(
    package: Any, officers: list[Any], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    now = timezone.now()
    event = status_call(package, APPROVED, now - dt.timedelta(minutes=3), actor="mallory")
    status_call(package, APPROVED, now - dt.timedelta(days=30), actor="old")  # outside the match window
    status_call(package, REJECTED, now - dt.timedelta(minutes=1), actor="other")  # another status
    with django_capture_on_commit_callbacks(execute=True):
        flagged = package_observed_status_change(package, PENDING, APPROVED, now)
    assert isinstance(flagged, OutsideDecision)
    assert (flagged.from_status, flagged.to_status) == (PENDING, APPROVED)
    assert flagged.event == event and flagged.actor_name == "mallory" and flagged.changed_at == event.event_time
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert sorted(message.to) == ["connie@example.com", "cora@example.com"]
    assert "credit-risk v3" in message.subject and "outside the dashboard" in message.subject
    assert "mallory" in message.body and event.event_id in message.body
    assert "/packages/credit-risk/3/audit/" in message.body
    flagged.refresh_from_db()
    assert flagged.notified_at is not None
    entry = AuditLogEntry.objects.get(action="outside_decision.flagged")
    assert entry.package_id == package.pk and entry.after["cloudtrail_event_id"] == event.event_id
    assert verify_audit_chain().ok

    # the same observation again (a retried sync): same row, no second email
    with django_capture_on_commit_callbacks(execute=True):
        again = record_outside_decision(package, from_status=PENDING, to_status=APPROVED, observed_at=now)
    assert again.pk == flagged.pk
    assert len(mail.outbox) == 1
    assert outside_decisions_notify_pending() == 0


def test_status_change_explained_by_a_sent_push_is_not_flagged(
    package: Any, officers: list[Any], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    now = timezone.now()
    push(package, APPROVED, now - dt.timedelta(minutes=2), sent=now - dt.timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert package_observed_status_change(package, PENDING, APPROVED, now) is None
    assert not OutsideDecision.objects.exists()
    assert mail.outbox == []


def test_pushes_that_do_not_explain_the_change(
    package: Any, officers: list[Any], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    now = timezone.now()
    push(package, REJECTED, now - dt.timedelta(minutes=2), sent=now - dt.timedelta(minutes=1))  # other status
    push(package, APPROVED, now - dt.timedelta(minutes=2), state=PushOutbox.State.CONFLICT)  # never written
    push(package, APPROVED, now - dt.timedelta(days=2), sent=now - dt.timedelta(days=2))  # long ago
    with django_capture_on_commit_callbacks(execute=True):
        assert package_observed_status_change(package, PENDING, APPROVED, now) is not None
    assert len(mail.outbox) == 1


def test_not_decisions(package: Any, officers: list[Any]) -> None:
    now = timezone.now()
    assert package_observed_status_change(package, APPROVED, APPROVED, now) is None
    assert package_observed_status_change(package, "", PENDING, now) is None  # registered, awaiting review
    assert package_observed_status_change(package, None, "", now) is None
    # ...but a package registered as Approved skipped the review
    assert package_observed_status_change(package, "", APPROVED, now) is not None


def test_evidence_attached_after_a_later_ingest(
    package: Any, officers: list[Any], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        flagged = package_observed_status_change(package, APPROVED, REJECTED, now)
    assert flagged is not None and flagged.event is None
    assert "not yet known" in mail.outbox[0].body
    assert attach_cloudtrail_evidence() == 0
    event = status_call(package, REJECTED, now - dt.timedelta(seconds=40), actor="studio-user")
    assert attach_cloudtrail_evidence() == 1
    flagged.refresh_from_db()
    assert flagged.event == event and flagged.actor_name == "studio-user"
    assert attach_cloudtrail_evidence() == 0  # idempotent
    assert AuditLogEntry.objects.filter(action="outside_decision.evidence").count() == 1


def test_smtp_failure_is_retried(
    package: Any, officers: list[Any], monkeypatch: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    from django.core.mail import EmailMultiAlternatives

    def broken(self: Any, fail_silently: bool = False) -> int:
        raise OSError("SMTP down")

    monkeypatch.setattr(EmailMultiAlternatives, "send", broken)
    with django_capture_on_commit_callbacks(execute=True):
        flagged = package_observed_status_change(package, PENDING, APPROVED, timezone.now())
    assert flagged is not None
    flagged.refresh_from_db()
    assert flagged.notified_at is None
    monkeypatch.undo()
    assert outside_decisions_notify_pending() == 1
    assert len(mail.outbox) == 1
    assert outside_decisions_notify_pending() == 0


def test_a_failure_never_breaks_the_sync(package: Any, monkeypatch: Any) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(bypasses, "record_outside_decision", boom)
    assert package_observed_status_change(package, PENDING, APPROVED, timezone.now()) is None
    assert package.__class__.objects.filter(pk=package.pk).exists()  # the transaction is still usable


def test_bypasses_page(package: Any, officers: list[Any], viewer_client: Client) -> None:
    now = timezone.now()
    event = status_call(package, APPROVED, now - dt.timedelta(minutes=1), actor="<b>mallory</b>")
    record_outside_decision(package, from_status=PENDING, to_status=APPROVED, observed_at=now)
    page = viewer_client.get(reverse("registry:audit_bypasses"))
    text = page.content.decode()
    assert page.status_code == 200
    assert "credit-risk v3" in text and f"cloudtrail:{event.event_id}" in text
    assert "&lt;b&gt;mallory&lt;/b&gt;" in text and "<b>mallory</b>" not in text
    rejected_only = viewer_client.get(reverse("registry:audit_bypasses"), {"status": REJECTED}).content.decode()
    assert "credit-risk v3" not in rejected_only
