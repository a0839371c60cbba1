"""Issue 11 through the views: one status per version, gates that block and explain, the
compliance exception path, withdrawing a sign-off, and the push-in-flight poll."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.urls import reverse

from registry_app.models import (
    ApprovalPolicy,
    AuditLogEntry,
    Decision,
    ModelPackage,
    PolicyException,
    PushOutbox,
    ReviewState,
    SignOff,
)
from registry_app.models.registry import ApprovalStatus
from registry_app.review.decisions import package_revoke
from registry_app.review.queue_state import review_state_refresh
from tests.views.test_review_support import client_for, package_in_state, persona_user, signoff_row, url

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def gated() -> ModelPackage:
    """A pending version whose auc (0.9) fails the default policy's gate auc >= 0.95."""
    ApprovalPolicy.objects.create(name="gated", is_default=True, spec={"name": "gated", "gates": ["auc >= 0.95"]})
    return package_in_state("pending")


def page(user: Any, package: ModelPackage) -> str:
    return html.unescape(client_for(user).get(url("package_detail", package)).content.decode())


def exception_url(package: ModelPackage) -> str:
    return reverse("registry:policy_exception", args=[package.group.name, package.version])


def withdraw_url(package: ModelPackage, signoff: SignOff) -> str:
    return reverse("registry:signoff_withdraw", args=[package.group.name, package.version, signoff.pk])


# --------------------------------------------------------------------------------------------- the banner


def test_pending_banner_says_what_is_missing() -> None:
    package = package_in_state("pending")
    body = page(persona_user("viewer"), package)
    assert 'id="status-banner"' in body
    assert "Pending review" in body and "waiting for ml-lead, fairness, compliance" in body
    # Summary first, then the evidence, then the decision panel.
    assert body.index('id="status-banner"') < body.index('id="reports"') < body.index('id="review"')
    assert body.index('class="toc"') < body.index('id="reports"')


def test_revoked_version_never_says_awaiting_or_more_needed(django_capture_on_commit_callbacks: Any) -> None:
    package = package_in_state("approved")
    package_revoke(user=persona_user("comp"), package_id=package.pk, justification="data leak")
    PushOutbox.objects.filter(package=package).update(state=PushOutbox.State.SENT)
    ModelPackage.objects.filter(pk=package.pk).update(approval_status=ApprovalStatus.REJECTED)
    body = page(persona_user("viewer"), package)
    assert "Revoked" in body and "revoked by comp" in body and "data leak" in body
    assert "Awaiting sign-offs" not in body and "more needed" not in body and "Pending review" not in body


def test_archived_version_says_archived(django_capture_on_commit_callbacks: Any) -> None:
    package = package_in_state("pending")
    response = client_for(persona_user("comp")).post(
        reverse("registry:group_archive", args=[package.group.name]), {"justification": "retired"}
    )
    assert response.status_code == 302
    body = page(persona_user("viewer"), package)
    assert "Decided — pushing" in body  # the archive's push is on its way
    PushOutbox.objects.filter(package=package).update(state=PushOutbox.State.SENT)
    ModelPackage.objects.filter(pk=package.pk).update(approval_status=ApprovalStatus.REJECTED)
    body = page(persona_user("viewer"), package)
    assert ">Archived<" in body and "archived by comp" in body and "more needed" not in body


def test_conflict_is_shown_as_conflict() -> None:
    package = package_in_state("pending")
    decision = Decision.objects.create(package=package, kind="policy", status=ApprovalStatus.APPROVED)
    PushOutbox.objects.create(
        package=package,
        decision=decision,
        kind=PushOutbox.Kind.DECISION,
        target_status=ApprovalStatus.APPROVED,
        expected_status=ApprovalStatus.PENDING,
        state=PushOutbox.State.CONFLICT,
    )
    review_state_refresh([package.pk])
    assert ReviewState.objects.get(package=package).push_state == "conflict"
    assert "Conflict" in page(persona_user("viewer"), package)
    queue = html.unescape(
        client_for(persona_user("viewer")).get(reverse("registry:queue") + "?tab=all").content.decode()
    )
    assert ">Conflict<" in queue


def test_deciding_signoff_header_and_panel_agree_then_the_poll_settles(django_capture_on_commit_callbacks: Any) -> None:
    package = package_in_state("pending")
    for name in ("mlead", "fair"):
        signoff_row(package, persona_user(name), {"mlead": "ml-lead", "fair": "fairness"}[name])
    response = client_for(persona_user("comp")).post(url("signoff", package), {"decision": "approve"}, headers=HTMX)
    body = html.unescape(response.content.decode())
    assert response.status_code == 200
    # The panel and the banner (out of band) say the same, and the banner polls.
    assert body.count("Decided — pushing") >= 2 and 'hx-swap-oob="true"' in body
    assert 'hx-trigger="every 2s"' in body and "Pending review" not in body
    poll = url("package_detail", package) + "?part=status"
    client = client_for(persona_user("viewer"))
    assert client.get(poll, headers=HTMX).status_code == 200  # still in flight: keep polling
    PushOutbox.objects.filter(package=package).update(state=PushOutbox.State.SENT)
    ModelPackage.objects.filter(pk=package.pk).update(approval_status=ApprovalStatus.APPROVED)
    settled = client.get(poll, headers=HTMX)
    assert settled.status_code == 286
    final = html.unescape(settled.content.decode())
    assert ">Approved<" in final and 'id="review"' in final and "every 2s" not in final


# --------------------------------------------------------------------------------------------- gates


def test_gate_failure_is_explained_before_signing_and_approve_is_not_offered(gated: ModelPackage) -> None:
    body = page(persona_user("mlead"), gated)
    assert "Blocked by policy" in body and "auc 0.9 < 0.95" in body
    assert "Approval is blocked by policy." in body
    assert 'value="approve"' not in body and 'value="reject"' in body
    assert "Record a policy exception" not in body  # only compliance


def test_blocked_approval_is_refused_and_nothing_written(gated: ModelPackage) -> None:
    client = client_for(persona_user("mlead"))
    client.get(url("package_detail", gated))  # the login's own audit entries are written before counting
    before = (SignOff.objects.count(), PushOutbox.objects.count(), AuditLogEntry.objects.count())
    response = client.post(url("signoff", gated), {"decision": "approve", "role": "ml-lead"})
    assert response.status_code == 400
    assert "auc 0.9 &lt; 0.95" in response.content.decode() or "auc 0.9 < 0.95" in response.content.decode()
    assert (SignOff.objects.count(), PushOutbox.objects.count(), AuditLogEntry.objects.count()) == before


def test_queue_shows_the_gate_not_an_empty_cell(gated: ModelPackage) -> None:
    body = html.unescape(
        client_for(persona_user("viewer")).get(reverse("registry:queue") + "?tab=all").content.decode()
    )
    assert ">Gates<" in body and "Blocked: auc 0.9 < 0.95" in body and "1 failing" in body


@pytest.mark.parametrize("who", ["mlead", "fair", "viewer"])
def test_only_compliance_records_an_exception(gated: ModelPackage, who: str) -> None:
    response = client_for(persona_user(who)).post(exception_url(gated), {"justification": "known issue"})
    assert response.status_code == 403
    assert not PolicyException.objects.exists()


def test_exception_needs_a_justification(gated: ModelPackage) -> None:
    response = client_for(persona_user("comp")).post(exception_url(gated), {"justification": "   "})
    assert response.status_code == 400 and "justification" in response.content.decode()
    assert not PolicyException.objects.exists()


def test_exception_path_unblocks_approvals_and_is_written_into_the_description(
    gated: ModelPackage, django_capture_on_commit_callbacks: Any
) -> None:
    assert "Record a policy exception" in page(persona_user("comp"), gated)
    why = "auc measured on the 2025 holdout; 2026 data is " + "x" * 900
    response = client_for(persona_user("comp")).post(exception_url(gated), {"justification": why[:800]})
    assert response.status_code == 302
    exception = PolicyException.objects.get()
    assert exception.gates == [{"gate": "auc >= 0.95", "shortfall": "auc 0.9 < 0.95"}]
    entry = AuditLogEntry.objects.get(action="policy.exception")
    assert entry.after["justification"].startswith("auc measured")
    assert ReviewState.objects.get(package=gated).blocked_by == ""
    body = page(persona_user("mlead"), gated)
    assert 'value="approve"' in body and "Pending review" in body and "Policy exception" in body
    for name, role in (("mlead", "ml-lead"), ("fair", "fairness"), ("comp", "compliance")):
        ok = client_for(persona_user(name)).post(url("signoff", gated), {"decision": "approve", "role": role})
        assert ok.status_code == 302
    decision = Decision.objects.get(package=gated)
    assert decision.status == ApprovalStatus.APPROVED
    assert "Policy exception by comp" in decision.description and "auc 0.9 < 0.95" in decision.description
    assert len(decision.description) <= 1024
    assert PushOutbox.objects.get(decision=decision).target_description == decision.description


def test_no_exception_on_a_version_no_gate_blocks() -> None:
    package = package_in_state("pending")
    response = client_for(persona_user("comp")).post(exception_url(package), {"justification": "why not"})
    assert response.status_code == 400 and not PolicyException.objects.exists()


# --------------------------------------------------------------------------------------------- withdrawal


def test_withdraw_own_signoff_before_the_decision(django_capture_on_commit_callbacks: Any) -> None:
    package = package_in_state("pending")
    mlead = persona_user("mlead")
    client = client_for(mlead)
    assert client.post(url("signoff", package), {"decision": "approve"}).status_code == 302
    signoff = SignOff.objects.get(package=package)
    assert "Withdraw my sign-off" in page(mlead, package)
    assert "ml-lead" not in ReviewState.objects.get(package=package).missing_roles
    response = client.post(withdraw_url(package, signoff))
    assert response.status_code == 302
    signoff.refresh_from_db()
    assert signoff.withdrawn_at is not None
    assert AuditLogEntry.objects.filter(action="signoff.withdrawn", actor_name="mlead").exists()
    assert "ml-lead" in ReviewState.objects.get(package=package).missing_roles  # refreshed
    # The role flag the approval set is withdrawn from the registry too.
    assert PushOutbox.objects.filter(package=package, flags={"MLEngineerApproved": None}).exists()
    body = page(mlead, package)
    assert "withdrawn" in body and 'value="approve"' in body  # may sign again


def test_cannot_withdraw_someone_elses_signoff() -> None:
    package = package_in_state("pending")
    signoff = signoff_row(package, persona_user("mlead"), "ml-lead")
    response = client_for(persona_user("fair")).post(withdraw_url(package, signoff))
    assert response.status_code == 403
    signoff.refresh_from_db()
    assert signoff.withdrawn_at is None and not AuditLogEntry.objects.filter(action="signoff.withdrawn").exists()


def test_cannot_withdraw_after_the_decision(django_capture_on_commit_callbacks: Any) -> None:
    package = package_in_state("pending")
    fair = persona_user("fair")
    client = client_for(fair)
    assert client.post(url("signoff", package), {"decision": "reject", "comment": "bias"}).status_code == 302
    signoff = SignOff.objects.get(package=package)
    assert "Withdraw my sign-off" not in page(fair, package)
    response = client.post(withdraw_url(package, signoff))
    assert response.status_code == 400 and "already decided" in html.unescape(response.content.decode())
    signoff.refresh_from_db()
    assert signoff.withdrawn_at is None


def test_withdraw_needs_post_and_csrf() -> None:
    package = package_in_state("pending")
    signoff = signoff_row(package, persona_user("mlead"), "ml-lead")
    assert client_for(persona_user("mlead")).get(withdraw_url(package, signoff)).status_code == 405
    strict = client_for(persona_user("mlead"), enforce_csrf_checks=True)
    assert strict.post(withdraw_url(package, signoff)).status_code == 403
    signoff.refresh_from_db()
    assert signoff.withdrawn_at is None
