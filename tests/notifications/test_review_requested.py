"""Review requested: content, recipients and idempotency (its after-commit enqueueing: test_enqueue.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.mail import EmailMultiAlternatives

from registry_app.models import Notification, NotificationKind, NotificationPreference
from registry_app.models.registry import ApprovalStatus
from registry_app.notifications import emails as notifications
from registry_app.review.policy import PolicySpec
from registry_app.tasks import notify_review_requested_task
from tests.factories import ModelPackageFactory, ModelPackageGroupFactory, RegistrySourceFactory

from .conftest import SITE, make_user

pytestmark = pytest.mark.django_db


def _by_recipient(outbox: list[Any]) -> dict[str, EmailMultiAlternatives]:
    return {m.to[0]: m for m in outbox}


def test_email_has_text_and_html_with_absolute_link(mailoutbox: list[Any], reviewers: dict[str, Any], package) -> None:
    assert notify_review_requested_task(package.pk) == 3

    message = _by_recipient(mailoutbox)["lena@example.com"]
    link = f"{SITE}/packages/credit-risk/3/"
    assert message.subject == "[Model governance] Review requested: credit-risk v3"
    assert message.from_email == "governance@example.test"
    assert "Hello Lena Lead (lena)" in message.body
    assert link in message.body
    assert "ml-lead, fairness, compliance" in message.body
    (html, mimetype), *_ = message.alternatives
    assert mimetype == "text/html"
    assert f'href="{link}"' in html
    assert f"{SITE}/profile/" in html and f"{SITE}/profile/" in message.body


def test_recipients_are_required_role_holders_only(
    mailoutbox: list[Any], reviewers: dict[str, Any], outsider: Any, package
) -> None:
    make_user("nomail", "fairness", email="")
    make_user("quitter", "compliance", is_active=False)
    opted = make_user("optout", "ml-lead")
    NotificationPreference.objects.create(user=opted, opted_out=[NotificationKind.REVIEW_REQUESTED])
    other_kind = make_user("optout-other", "ml-lead")
    NotificationPreference.objects.create(user=other_kind, opted_out=[NotificationKind.SLA_REMINDER])

    notify_review_requested_task(package.pk)

    assert sorted(m.to[0] for m in mailoutbox) == [
        "connie@example.com",
        "farid@example.com",
        "lena@example.com",
        "optout-other@example.com",
    ]


def test_holder_of_two_roles_gets_one_email(mailoutbox: list[Any], package) -> None:
    make_user("both", "ml-lead", "compliance")
    notify_review_requested_task(package.pk)
    assert [m.to for m in mailoutbox] == [["both@example.com"]]


def test_roles_come_from_the_group_policy(
    mailoutbox: list[Any], reviewers: dict[str, Any], package, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = PolicySpec(name="two-eyes", required_roles={"ml-lead": 1, "compliance": 1})
    monkeypatch.setattr(notifications, "policy_for", lambda group: policy)
    notify_review_requested_task(package.pk)
    assert sorted(m.to[0] for m in mailoutbox) == ["connie@example.com", "lena@example.com"]
    assert "two-eyes" in mailoutbox[0].body


def test_twice_and_resync_send_one_email_each(mailoutbox: list[Any], reviewers: dict[str, Any], package) -> None:
    notify_review_requested_task(package.pk)
    notify_review_requested_task(package.pk)
    notifications.notify_review_requested(package.pk)
    assert len(mailoutbox) == 3
    rows = Notification.objects.filter(package=package, kind=NotificationKind.REVIEW_REQUESTED)
    assert rows.count() == 3
    assert set(rows.values_list("state", "attempts")) == {(Notification.State.SENT, 1)}


def test_recipients_are_those_holding_the_role_when_it_became_pending(
    mailoutbox: list[Any], reviewers: dict[str, Any], package
) -> None:
    """The rows are written with the event: someone given the role later is not told of it (their queue is)."""
    notify_review_requested_task(package.pk)
    make_user("newbie", "fairness")
    notify_review_requested_task(package.pk)
    assert len(mailoutbox) == 3
    assert Notification.objects.count() == 3


@pytest.mark.parametrize(
    "change",
    [{"approval_status": ApprovalStatus.APPROVED}, {"deleted": True}],
    ids=["already-decided", "deleted"],
)
def test_nothing_for_packages_no_longer_pending(
    mailoutbox: list[Any], reviewers: dict[str, Any], package, change: dict[str, Any]
) -> None:
    from django.utils import timezone

    if change.pop("deleted", False):
        package.deleted_at = timezone.now()
    for field, value in change.items():
        setattr(package, field, value)
    package.save()
    assert notify_review_requested_task(package.pk) == 0
    assert notify_review_requested_task(999_999) == 0
    assert mailoutbox == []


def test_link_names_the_source_when_the_group_name_exists_twice(mailoutbox: list[Any], package) -> None:
    make_user("lena", "ml-lead")
    ModelPackageGroupFactory(
        name="credit-risk", source=RegistrySourceFactory(name="staging", account_id="444455556666")
    )
    notify_review_requested_task(package.pk)
    assert f"{SITE}/packages/credit-risk/3/?source={package.group.source.name}" in mailoutbox[0].body


def test_registry_text_is_escaped_in_html_and_subject_is_one_line(mailoutbox: list[Any]) -> None:
    make_user("lena", "ml-lead")
    group = ModelPackageGroupFactory(name="evil\r\nBcc: victim@example.com")
    package = ModelPackageFactory(
        group=group,
        version=1,
        description='<script>alert("x")</script> & <b>bold</b>',
        approval_status="PendingManualApproval",
    )
    notify_review_requested_task(package.pk)
    (message,) = mailoutbox
    assert "\n" not in message.subject and "\r" not in message.subject
    assert message.subject == "[Model governance] Review requested: evil Bcc: victim@example.com v1"
    assert message.to == ["lena@example.com"]
    html = message.alternatives[0][0]
    assert "<script>" not in html and "&lt;script&gt;" in html and "&amp; &lt;b&gt;" in html
    # Plain text is not HTML: no entities there.
    assert '<script>alert("x")</script> & <b>bold</b>' in message.body
    assert "&lt;" not in message.body and "&amp;" not in message.body


def test_policy_stored_for_the_group_decides_the_roles(
    mailoutbox: list[Any], reviewers: dict[str, Any], package
) -> None:
    from registry_app.models import ApprovalPolicy

    spec = PolicySpec(name="credit", required_roles={"compliance": 1, "model-risk": 1}).to_dict()
    ApprovalPolicy.objects.create(name="credit", spec=spec, group_name="credit-risk")
    make_user("mira", "model-risk")
    notify_review_requested_task(package.pk)
    assert sorted(m.to[0] for m in mailoutbox) == ["connie@example.com", "mira@example.com"]


def test_registrant_is_not_asked_to_review_their_own_package(mailoutbox: list[Any], reviewers: dict[str, Any]) -> None:
    from tests.factories import user_context

    package = ModelPackageFactory(created_by=user_context("farid"), approval_status="PendingManualApproval")
    notify_review_requested_task(package.pk)
    assert sorted(m.to[0] for m in mailoutbox) == ["connie@example.com", "lena@example.com"]
