"""Who may do what, at the HTTP level: every persona × action × package state.

Only the allowed combinations change anything. Anonymous users are sent to the login page;
everyone else who is refused gets 400 (wrong state) or 403 (not allowed) with a readable
message, and the SignOff / Decision / PushOutbox rows stay exactly as they were. The
services run for real; AWS is never reached (the pushes they queue wait for a commit that a
test transaction never makes).
"""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from registry_app.models import Decision, ModelPackage, PushOutbox, SignOff
from tests.views.test_review_support import (
    PERSONAS,
    ROLE_OF,
    STATES,
    client_for,
    counts,
    failed_push,
    package_in_state,
    persona_user,
    push_states,
    url,
)

pytestmark = pytest.mark.django_db

ACTIONS = ("sign_approve", "sign_reject", "revoke", "archive", "retry_push")
ALL_PERSONAS = ("anonymous", *PERSONAS)


def expected(persona: str, action: str, state: str) -> tuple[int | str, str]:
    """(``"ok"`` | ``"login"`` | status code, a fragment of the refusal message)."""
    if persona == "anonymous":
        return "login", ""
    if action in ("sign_approve", "sign_reject"):
        if state == "deleted":
            return 400, "has been deleted from the registry"
        if state in ("approved", "rejected"):
            return 400, "was already decided"
        return ("ok", "") if persona in ROLE_OF else (403, "does not hold the ml-lead role")
    if action == "revoke":
        if persona != "comp":
            return 403, "Only compliance officers can revoke an approval"
        if state == "deleted":
            return 400, "has been deleted from the registry"
        return ("ok", "") if state == "approved" else (400, "can have its approval revoked")
    if action == "archive":
        if persona != "comp":
            return 403, "Only compliance officers can archive a model package group"
        return (400, "has been deleted from the registry") if state == "deleted" else ("ok", "")
    # retry_push
    return ("ok", "") if persona == "staff" else (403, "Only staff can retry a push")


def post(client: Client, action: str, package: ModelPackage, push: PushOutbox, persona: str) -> Any:
    if action in ("sign_approve", "sign_reject"):
        # People without a sign-off role try to pass as an ML lead.
        data = {"role": ROLE_OF.get(persona, "ml-lead"), "comment": "Looks fine to me."}
        data["decision"] = "approve" if action == "sign_approve" else "reject"
        return client.post(url("signoff", package), data)
    if action == "revoke":
        return client.post(url("revoke", package), {"justification": "Drift found in production data."})
    if action == "archive":
        target = reverse("registry:group_archive", args=[package.group.name])
        return client.post(target, {"justification": "Product line retired."})
    return client.post(reverse("registry:push_retry", args=[push.pk]))


def effect_of(action: str, state: str) -> tuple[int, int, int]:
    """What an allowed action adds: (sign-offs, decisions, pushes)."""
    if action == "sign_approve":
        return 1, 0, 1  # one role of three: its flag push, no decision yet
    if action == "sign_reject":
        return 1, 1, 1  # a current rejection decides: decision + decision push
    if action == "revoke":
        return 0, 1, 1
    if action == "archive":
        return (0, 0, 0) if state == "rejected" else (0, 1, 1)
    return 0, 0, 0  # retry: the same row goes back to pending


CASES = [(p, a, s) for p in ALL_PERSONAS for a in ACTIONS for s in STATES]


@pytest.mark.parametrize(("persona", "action", "state"), CASES, ids=["-".join(c) for c in CASES])
def test_security_matrix(persona: str, action: str, state: str, django_capture_on_commit_callbacks: Any) -> None:
    package = package_in_state(state)
    push = failed_push(package)
    user = None if persona == "anonymous" else persona_user(persona)
    client = client_for(user)
    before, states_before = counts(), push_states()
    outcome, message = expected(persona, action, state)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(client, action, package, push, persona)

    if outcome == "login":
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")
    elif outcome == "ok":
        assert response.status_code == 302, response.content.decode()[:2000]
        assert "/accounts/login/" not in response["Location"]
        added = effect_of(action, state)
        assert counts() == tuple(b + a for b, a in zip(before, added, strict=True))
        if action == "retry_push":
            assert PushOutbox.objects.get(pk=push.pk).state == PushOutbox.State.PENDING
        if added != (0, 0, 0) or action == "retry_push":
            assert callbacks, "an allowed action sends its push (and notifications) after commit"
        return
    else:
        assert response.status_code == outcome, response.content.decode()[:2000]
        body = html.unescape(response.content.decode())
        assert message in body
        assert 'role="alert"' in response.content.decode()
    assert counts() == before
    assert push_states() == states_before
    assert not callbacks


@pytest.mark.parametrize("persona", ["nobody", "viewer", "staff"])
def test_signing_without_a_role_and_without_naming_one_is_refused(persona: str) -> None:
    package = package_in_state("pending")
    client = client_for(persona_user(persona))
    before = counts()

    response = client.post(url("signoff", package), {"decision": "approve"})

    assert response.status_code == 403
    assert "You hold none of the roles" in html.unescape(response.content.decode())
    assert counts() == before


def test_a_role_holder_cannot_sign_a_role_they_do_not_hold() -> None:
    package = package_in_state("pending")
    client = client_for(persona_user("fair"))

    response = client.post(url("signoff", package), {"decision": "approve", "role": "compliance"})

    assert response.status_code == 403
    assert "does not hold the compliance role" in response.content.decode()
    assert SignOff.objects.count() == 0


def test_signing_twice_is_refused_the_second_time(django_capture_on_commit_callbacks: Any) -> None:
    package = package_in_state("pending")
    client = client_for(persona_user("mlead"))
    with django_capture_on_commit_callbacks(execute=False):
        assert client.post(url("signoff", package), {"decision": "approve"}).status_code == 302

    response = client.post(url("signoff", package), {"decision": "approve", "role": "ml-lead"})

    assert response.status_code == 400
    assert "has already signed off this model package as ml-lead" in response.content.decode()
    assert SignOff.objects.count() == 1


def test_the_registrant_cannot_sign_their_own_package() -> None:
    from tests.factories import user_context

    package = package_in_state("pending", created_by=user_context("mlead"))
    client = client_for(persona_user("mlead"))

    response = client.post(url("signoff", package), {"decision": "approve", "role": "ml-lead"})

    assert response.status_code == 403
    assert "separation of duties" in response.content.decode()
    assert SignOff.objects.count() == 0


def test_retry_is_refused_for_a_push_that_did_not_fail() -> None:
    package = package_in_state("pending")
    push = failed_push(package, state=PushOutbox.State.SENT)
    client = client_for(persona_user("staff"))

    response = client.post(reverse("registry:push_retry", args=[push.pk]))

    assert response.status_code == 400
    assert "only failed or conflicting pushes can be retried" in response.content.decode()
    assert PushOutbox.objects.get(pk=push.pk).state == PushOutbox.State.SENT


def test_unknown_targets_are_404() -> None:
    import uuid

    client = client_for(persona_user("comp"))
    package_in_state("pending")
    missing_version = reverse("registry:signoff", args=["credit-risk", 99])
    assert client.post(missing_version, {"decision": "approve"}).status_code == 404
    assert client.post(reverse("registry:revoke", args=["nope", 1]), {"justification": "x"}).status_code == 404
    assert client.post(reverse("registry:group_archive", args=["nope"]), {"justification": "x"}).status_code == 404
    assert client.post(reverse("registry:push_retry", args=[uuid.uuid4()])).status_code == 404
    assert Decision.objects.count() == 0
