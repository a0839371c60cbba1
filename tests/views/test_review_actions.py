"""The review actions through the views: the sign-off flow, htmx responses, validation, CSRF, methods."""

from __future__ import annotations

import html
import json
import re
from typing import Any
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse

from registry_app.models import Decision, ModelPackage, PushOutbox, SignOff
from registry_app.models.registry import ApprovalStatus
from tests.views.test_review_support import (
    client_for,
    counts,
    failed_push,
    package_in_state,
    persona_user,
    url,
)

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def pending() -> ModelPackage:
    return package_in_state("pending")


@pytest.fixture
def reviewers() -> dict[str, Any]:
    return {name: persona_user(name) for name in ("mlead", "fair", "comp")}


# --------------------------------------------------------------------------------------------- the flow


def test_three_personas_approve_and_the_final_push_is_queued(
    pending: ModelPackage, reviewers: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    # The broker is the only thing stubbed: the services run, the on-commit hooks fire, nothing is sent.
    with (
        mock.patch("registry_app.tasks.push_task.apply_async") as apply_async,
        mock.patch("registry_app.tasks.notify_decided_task.delay") as notify_decided,
    ):
        for name, role in (("mlead", "ml-lead"), ("fair", "fairness"), ("comp", "compliance")):
            client = client_for(reviewers[name])
            with django_capture_on_commit_callbacks(execute=True):
                response = client.post(url("signoff", pending), {"decision": "approve", "comment": f"{name} ok"})
            assert response.status_code == 302
            assert response["Location"].endswith("#review")
            page = client.get(response["Location"])
            assert f"Your approval as {role} was recorded." in page.content.decode()

    assert SignOff.objects.filter(package=pending, decision="approve").count() == 3
    decision = Decision.objects.get(package=pending)
    assert decision.kind == Decision.Kind.POLICY
    assert decision.status == ApprovalStatus.APPROVED
    assert decision.decided_by == reviewers["comp"]
    final = PushOutbox.objects.get(decision=decision)
    assert final.kind == PushOutbox.Kind.DECISION
    assert final.target_status == ApprovalStatus.APPROVED
    assert final.state == PushOutbox.State.PENDING
    assert final.flags == {"MLEngineerApproved": "true", "FairnessApproved": "true", "ComplianceApproved": "true"}
    # Three flag pushes and the decision push were sent to the worker (after each commit), none to AWS here.
    sent = [call.kwargs.get("args", call.args[0] if call.args else None) for call in apply_async.call_args_list]
    assert [str(final.pk)] in sent
    assert apply_async.call_count == 4
    notify_decided.assert_called_once_with(decision.pk)

    # The review page now shows the decision and the queued push to everyone.
    page = client_for(persona_user("viewer")).get(url("package_detail", pending)).content.decode()
    assert "Decided — pushing" in page  # the one status (review.status) replaced "Policy satisfied"
    assert "push-pending" in page


def test_the_last_signature_shows_the_decision_in_the_notice(
    pending: ModelPackage, reviewers: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    for name in ("mlead", "fair"):
        with django_capture_on_commit_callbacks(execute=False):
            client_for(reviewers[name]).post(url("signoff", pending), {"decision": "approve"})
    client = client_for(reviewers["comp"])
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(url("signoff", pending), {"decision": "approve"}, headers=HTMX)

    assert response.status_code == 200
    assert "The policy is decided: the registry will be set to Approved." in response.content.decode()


def test_htmx_signoff_returns_the_panel_with_trigger_and_out_of_band_counts(
    reviewers: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    first = package_in_state("pending", version=1)
    package_in_state("pending", version=2)
    client = client_for(reviewers["fair"])
    before = client.get(reverse("registry:queue")).content.decode()
    assert re.search(r'fairness <span class="nav-count has-items">2</span>', before)

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            url("signoff", first), {"decision": "approve", "comment": "Bias metrics fine"}, headers=HTMX
        )

    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="review"')
    assert "<html" not in body
    assert "Your approval as fairness was recorded." in body
    assert "Bias metrics fine" in body
    trigger = json.loads(response["HX-Trigger"])
    assert trigger["signoff-recorded"]["package"] == first.pk
    # The nav counts come along out-of-band, already counting the new sign-off.
    assert '<a id="nav-queue" href="/queue/" hx-swap-oob="true">' in body
    assert re.search(r'fairness <span class="nav-count has-items">1</span>', body)
    # The sign-off form is gone: this user has signed.
    assert 'name="decision"' not in body


def test_htmx_refusal_returns_the_panel_with_the_message_and_status(pending: ModelPackage) -> None:
    client = client_for(persona_user("viewer"))

    response = client.post(url("signoff", pending), {"decision": "approve", "role": "ml-lead"}, headers=HTMX)

    assert response.status_code == 403
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="review"')
    assert "data-swap-errors" in body  # review.js swaps 400/403 bodies for elements inside it
    assert "viewer does not hold the ml-lead role." in body
    assert "HX-Trigger" not in response
    assert SignOff.objects.count() == 0


def test_review_panel_partial_for_htmx_refresh(pending: ModelPackage) -> None:
    response = client_for(persona_user("mlead")).get(url("package_detail", pending), headers=HTMX)

    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="review"')
    assert "HX-Request" in response["Vary"]


# --------------------------------------------------------------------------------------------- validation


def test_rejection_without_comment_is_400_with_a_message(pending: ModelPackage) -> None:
    client = client_for(persona_user("fair"))

    response = client.post(url("signoff", pending), {"decision": "reject", "comment": "   "})

    assert response.status_code == 400
    assert "A rejection needs a comment" in response.content.decode()
    assert counts() == (0, 0, 0)


def test_rejection_without_comment_through_htmx_keeps_the_form(pending: ModelPackage) -> None:
    client = client_for(persona_user("fair"))

    response = client.post(url("signoff", pending), {"decision": "reject", "role": "fairness"}, headers=HTMX)

    assert response.status_code == 400
    body = response.content.decode()
    assert "A rejection needs a comment" in body
    assert '<button type="submit" name="decision" value="reject"' in body
    assert SignOff.objects.count() == 0


def test_rejection_with_comment_rejects_the_package(
    pending: ModelPackage, django_capture_on_commit_callbacks: Any
) -> None:
    client = client_for(persona_user("fair"))
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(url("signoff", pending), {"decision": "reject", "comment": "DPPL too high for age"})

    assert response.status_code == 302
    decision = Decision.objects.get(package=pending)
    assert decision.kind == Decision.Kind.REJECTION and decision.status == ApprovalStatus.REJECTED
    assert "DPPL too high for age" in decision.description
    page = client.get(response["Location"]).content.decode()
    assert "Your rejection as fairness was recorded." in page
    assert "Decided — pushing" in page and "rejected through the dashboard" in page


def test_unknown_decision_and_overlong_comment_are_400(pending: ModelPackage) -> None:
    client = client_for(persona_user("mlead"))

    assert client.post(url("signoff", pending), {"decision": "maybe"}).status_code == 400
    response = client.post(url("signoff", pending), {"decision": "approve", "comment": "x" * 4001})
    assert response.status_code == 400
    assert "at most 4000 characters" in html.unescape(response.content.decode())
    assert SignOff.objects.count() == 0


def test_a_user_with_two_roles_must_choose_one(pending: ModelPackage) -> None:
    from tests.views.test_review_support import make_user

    client = client_for(make_user("both", "ml-lead", "fairness"))
    page = client.get(url("package_detail", pending)).content.decode()
    assert '<select name="role" id="id_role">' in page

    response = client.post(url("signoff", pending), {"decision": "approve"})

    assert response.status_code == 400
    assert "Choose the role you sign as." in response.content.decode()
    assert SignOff.objects.count() == 0


def test_revoke_needs_a_justification() -> None:
    approved = package_in_state("approved")
    client = client_for(persona_user("comp"))

    response = client.post(url("revoke", approved), {"justification": ""})

    assert response.status_code == 400
    body = response.content.decode()
    assert "A justification is required" in body
    assert '<details class="danger-zone" id="revoke" open>' in body
    assert Decision.objects.count() == 0


def test_revoke_by_compliance(django_capture_on_commit_callbacks: Any) -> None:
    approved = package_in_state("approved")
    client = client_for(persona_user("comp"))
    page = client.get(url("package_detail", approved)).content.decode()
    assert "Revoke this approval" in page

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(url("revoke", approved), {"justification": "Data drift in Q3"})

    assert response.status_code == 302
    decision = Decision.objects.get(package=approved)
    assert decision.kind == Decision.Kind.REVOCATION and decision.status == ApprovalStatus.REJECTED
    assert "Data drift in Q3" in decision.description
    assert "The approval was revoked" in client.get(response["Location"]).content.decode()


# --------------------------------------------------------------------------------------------- archive


def test_archive_confirmation_lists_what_will_be_rejected(django_capture_on_commit_callbacks: Any) -> None:
    package_in_state("pending", version=1)
    package_in_state("approved", version=2)
    package_in_state("rejected", version=3)
    client = client_for(persona_user("comp"))
    target = reverse("registry:group_archive", args=["credit-risk"])

    page = client.get(target)

    assert page.status_code == 200
    body = page.content.decode()
    assert "What will be rejected" in body
    assert ">v1<" in body and ">v2<" in body and ">v3<" not in body
    assert "Archive group and reject 2 versions" in body

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(target, {"justification": "Product retired"})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("registry:group_detail", args=["credit-risk"]))
    assert Decision.objects.filter(kind=Decision.Kind.ARCHIVE).count() == 2
    followed = client.get(response["Location"]).content.decode()
    assert "credit-risk was archived: 2 versions will be set to Rejected" in followed


def test_archive_confirmation_is_403_for_others() -> None:
    package_in_state("pending")
    response = client_for(persona_user("mlead")).get(reverse("registry:group_archive", args=["credit-risk"]))

    assert response.status_code == 403
    body = response.content.decode()
    assert "Only a compliance officer can archive a group" in body
    assert 'name="justification"' not in body


def test_archive_needs_a_justification() -> None:
    package_in_state("pending")
    response = client_for(persona_user("comp")).post(
        reverse("registry:group_archive", args=["credit-risk"]), {"justification": " "}
    )

    assert response.status_code == 400
    assert "A justification is required" in response.content.decode()
    assert Decision.objects.count() == 0


def test_archive_link_on_the_review_page_for_compliance_only(pending: ModelPackage) -> None:
    link = reverse("registry:group_archive", args=["credit-risk"])
    assert link in client_for(persona_user("comp")).get(url("package_detail", pending)).content.decode()
    assert link not in client_for(persona_user("mlead")).get(url("package_detail", pending)).content.decode()


# --------------------------------------------------------------------------------------------- push retry


def test_staff_retry_push_through_htmx(pending: ModelPackage, django_capture_on_commit_callbacks: Any) -> None:
    push = failed_push(pending)
    client = client_for(persona_user("staff"))
    page = client.get(url("package_detail", pending)).content.decode()
    assert reverse("registry:push_retry", args=[push.pk]) in page
    assert ">Retry push</button>" in page

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(reverse("registry:push_retry", args=[push.pk]), headers=HTMX)

    assert response.status_code == 200
    assert "The push was queued again." in response.content.decode()
    assert PushOutbox.objects.get(pk=push.pk).state == PushOutbox.State.PENDING
    assert len(callbacks) == 1


def test_retry_button_hidden_from_non_staff(pending: ModelPackage) -> None:
    failed_push(pending)
    page = client_for(persona_user("comp")).get(url("package_detail", pending)).content.decode()
    assert ">Retry push</button>" not in page


# --------------------------------------------------------------------------------------------- CSRF and methods


def test_posts_without_csrf_token_are_403(pending: ModelPackage) -> None:
    approved = package_in_state("approved", version=2)
    push = failed_push(pending)
    targets = [
        (url("signoff", pending), {"decision": "approve"}, persona_user("mlead")),
        (url("revoke", approved), {"justification": "x"}, persona_user("comp")),
        (reverse("registry:group_archive", args=["credit-risk"]), {"justification": "x"}, persona_user("comp")),
        (reverse("registry:push_retry", args=[push.pk]), {}, persona_user("staff")),
    ]
    for target, data, user in targets:
        client = Client(enforce_csrf_checks=True)
        client.force_login(user)
        response = client.post(target, data)
        assert response.status_code == 403, target
        assert b"CSRF" in response.content
        response = client.post(target, data, headers=HTMX)
        assert response.status_code == 403, target
    assert counts() == (0, 0, 1)
    assert PushOutbox.objects.get(pk=push.pk).state == PushOutbox.State.FAILED


def test_htmx_post_with_the_token_from_body_hx_headers_passes_csrf(
    pending: ModelPackage, django_capture_on_commit_callbacks: Any
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(persona_user("mlead"))
    page = client.get(url("package_detail", pending)).content.decode()
    match = re.search(r"<body hx-headers='\{\"X-CSRFToken\": \"([^\"]+)\"\}'>", page)
    assert match, "the CSRF token rides on <body hx-headers>"

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            url("signoff", pending), {"decision": "approve"}, headers={**HTMX, "X-CSRFToken": match.group(1)}
        )

    assert response.status_code == 200
    assert SignOff.objects.count() == 1


@pytest.mark.parametrize("name", ["signoff", "revoke"])
def test_get_on_package_post_endpoints_is_405(pending: ModelPackage, name: str) -> None:
    response = client_for(persona_user("comp")).get(url(name, pending))
    assert response.status_code == 405


def test_get_on_push_retry_is_405(pending: ModelPackage) -> None:
    push = failed_push(pending)
    assert client_for(persona_user("staff")).get(reverse("registry:push_retry", args=[push.pk])).status_code == 405


def test_other_methods_on_archive_are_405(pending: ModelPackage) -> None:
    client = client_for(persona_user("comp"))
    target = reverse("registry:group_archive", args=["credit-risk"])
    assert client.put(target).status_code == 405
    assert client.delete(target).status_code == 405
