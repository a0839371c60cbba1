"""Issue 11 in Chromium: the one status banner through a push in flight (then settled), revoke,
archive and conflict; a blocked gate with the compliance exception path; withdrawing a sign-off.

Real pieces: Debian's Chromium, Django's live server, the real CSP, htmx. Celery sends are
recorded instead of sent, and the tests play the push worker by updating the outbox and the
mirror, which is what the worker's success path writes.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from registry_app.models import ApprovalPolicy, Decision, ModelPackage, PolicyException, PushOutbox, SignOff
from registry_app.models.registry import ApprovalStatus
from registry_app.review.queue_state import review_state_refresh
from tests.browser.watch import Watch, watch
from tests.views.test_review_support import package_in_state, persona_user, signoff_row

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BANNER = "#status-banner"


@pytest.fixture
def quiet_tasks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Record Celery sends instead of leaving messages on the broker for a later test's worker."""
    from celery.app.task import Task

    sent: list[tuple[str, Any]] = []
    monkeypatch.setattr(Task, "apply_async", lambda self, args=None, kwargs=None, **_: sent.append((self.name, args)))
    return sent


def review_path(package: ModelPackage) -> str:
    return f"/packages/{package.group.name}/{package.version}/?source={package.group.source.name}"


def deliver(package: ModelPackage, status: str) -> None:
    """What the push worker writes when SageMaker accepted the decision."""
    PushOutbox.objects.filter(package=package, state__in=PushOutbox.ACTIVE_STATES).update(state=PushOutbox.State.SENT)
    ModelPackage.objects.filter(pk=package.pk).update(approval_status=status)
    review_state_refresh([package.pk])


def session(browser: Any, base: str, username: str) -> Watch:
    state = watch(browser)
    state.log_in(base, username)
    return state


def test_status_banner_through_push_revoke_archive_and_conflict(live_server, browser, quiet_tasks) -> None:  # type: ignore[no-untyped-def]
    package = package_in_state("pending")
    signoff_row(package, persona_user("mlead"), "ml-lead")
    signoff_row(package, persona_user("fair"), "fairness")
    persona_user("comp")
    state = session(browser, live_server.url, "comp")
    page = state.page
    try:
        # 1. The deciding sign-off: banner and panel agree at once, and the banner polls until settled.
        page.goto(live_server.url + review_path(package))
        expect(page.locator(BANNER)).to_contain_text("Pending review")
        expect(page.locator(BANNER)).to_contain_text("waiting for compliance")
        with page.expect_response(lambda r: "/signoff/" in r.url) as signed:
            page.get_by_role("button", name="Approve", exact=True).click()
        assert signed.value.status == 200
        expect(page.locator(BANNER)).to_contain_text("Decided — pushing")
        expect(page.locator("#review")).to_contain_text("Decided — pushing")
        with page.expect_response(lambda r: "part=status" in r.url, timeout=10_000) as polled:
            pass
        assert polled.value.status == 200  # in flight: keep polling
        deliver(package, ApprovalStatus.APPROVED)
        with page.expect_response(lambda r: "part=status" in r.url, timeout=10_000) as final:
            pass
        assert final.value.status == 286
        expect(page.locator(BANNER)).to_contain_text("Approved")
        expect(page.locator(BANNER)).to_contain_text("approved through the dashboard")
        expect(page.locator("#review")).not_to_contain_text("Decided — pushing")
        polls = len([u for u in state.htmx_requests if "part=status" in u])
        page.wait_for_timeout(2500)  # a stopped poll sends nothing more
        assert len([u for u in state.htmx_requests if "part=status" in u]) == polls

        # 2. Revoke: never "Awaiting sign-offs" / "more needed" afterwards.
        page.reload()
        page.locator("#revoke summary").click()
        page.get_by_label("Justification").fill("Training data leak found after approval.")
        page.get_by_role("button", name="Revoke approval").click()
        page.wait_for_load_state("load")
        expect(page.locator(BANNER)).to_contain_text("Decided — pushing")
        deliver(package, ApprovalStatus.REJECTED)
        expect(page.locator(BANNER)).to_contain_text("Revoked", timeout=10_000)
        expect(page.locator(BANNER)).to_contain_text("Training data leak")
        body = page.inner_text("main")
        assert "more needed" not in body and "Awaiting sign-offs" not in body and "Pending review" not in body

        # 3. Archive the group: a second, pending version reads Archived once the push landed.
        second = package_in_state("pending", version=2)
        page.goto(f"{live_server.url}/groups/{second.group.name}/archive/?source={second.group.source.name}")
        page.get_by_label("Justification").fill("Model retired.")
        page.locator("form button[type=submit]").last.click()
        page.wait_for_load_state("load")
        page.goto(live_server.url + review_path(second))
        expect(page.locator(BANNER)).to_contain_text("Decided — pushing")
        deliver(second, ApprovalStatus.REJECTED)
        expect(page.locator(BANNER)).to_contain_text("Archived", timeout=10_000)
        assert "more needed" not in page.inner_text("main")

        # 4. Conflict: the registry changed under a decision push.
        third = package_in_state("pending", version=3)
        decision = Decision.objects.create(package=third, kind="policy", status=ApprovalStatus.APPROVED)
        PushOutbox.objects.create(
            package=third,
            decision=decision,
            kind=PushOutbox.Kind.DECISION,
            target_status=ApprovalStatus.APPROVED,
            expected_status=ApprovalStatus.PENDING,
            state=PushOutbox.State.CONFLICT,
        )
        review_state_refresh([third.pk])
        page.goto(live_server.url + review_path(third))
        expect(page.locator(BANNER)).to_contain_text("Conflict")
        page.goto(f"{live_server.url}/queue/?tab=all")
        expect(page.locator("#queue-list")).to_contain_text("Conflict")
        state.assert_clean("status banner")
    finally:
        state.context.close()


def test_blocked_gate_and_the_exception_path(live_server, browser, quiet_tasks) -> None:  # type: ignore[no-untyped-def]
    ApprovalPolicy.objects.create(name="gated", is_default=True, spec={"name": "gated", "gates": ["auc >= 0.95"]})
    package = package_in_state("pending")
    persona_user("mlead")
    persona_user("comp")
    reviewer = session(browser, live_server.url, "mlead")
    try:
        page = reviewer.page
        page.goto(live_server.url + review_path(package))
        expect(page.locator(BANNER)).to_contain_text("Blocked by policy")
        expect(page.locator(BANNER)).to_contain_text("auc 0.9 < 0.95")
        expect(page.locator("#gate-block")).to_contain_text("Approval is blocked by policy")
        expect(page.get_by_role("button", name="Approve", exact=True)).to_have_count(0)
        expect(page.get_by_role("button", name="Reject", exact=True)).to_be_visible()
        page.goto(f"{live_server.url}/queue/?tab=all")
        expect(page.locator("#queue-list")).to_contain_text("Blocked: auc 0.9 < 0.95")
        reviewer.assert_clean("blocked gate")
    finally:
        reviewer.context.close()

    officer = session(browser, live_server.url, "comp")
    try:
        page = officer.page
        page.goto(live_server.url + review_path(package))
        page.locator("#exception summary").click()
        page.get_by_label("Justification").fill("2026 holdout is not yet labelled; risk accepted by the board.")
        with page.expect_response(lambda r: "/exception/" in r.url) as recorded:
            page.get_by_role("button", name="Record exception").click()
        assert recorded.value.status == 200
        expect(page.locator(BANNER)).to_contain_text("Pending review")
        expect(page.locator(BANNER)).to_contain_text("risk accepted by the board")
        assert PolicyException.objects.filter(package=package).count() == 1
        officer.assert_clean("exception")
    finally:
        officer.context.close()

    reviewer = session(browser, live_server.url, "mlead")
    try:
        reviewer.page.goto(live_server.url + review_path(package))
        expect(reviewer.page.get_by_role("button", name="Approve", exact=True)).to_be_visible()
    finally:
        reviewer.context.close()


def test_withdraw_own_signoff(live_server, browser, quiet_tasks) -> None:  # type: ignore[no-untyped-def]
    package = package_in_state("pending")
    persona_user("mlead")
    state = session(browser, live_server.url, "mlead")
    page = state.page
    try:
        page.goto(live_server.url + review_path(package))
        with page.expect_response(lambda r: "/signoff/" in r.url):
            page.get_by_role("button", name="Approve", exact=True).click()
        expect(page.locator(BANNER)).to_contain_text("waiting for fairness, compliance")
        with page.expect_response(lambda r: "/withdraw/" in r.url) as withdrawn:
            page.get_by_role("button", name="Withdraw my sign-off").click()
        assert withdrawn.value.status == 200
        expect(page.locator("#review")).to_contain_text("was withdrawn")
        expect(page.locator(BANNER)).to_contain_text("waiting for ml-lead, fairness, compliance")
        expect(page.get_by_role("button", name="Approve", exact=True)).to_be_visible()
        assert SignOff.objects.get(package=package).withdrawn_at is not None
        assert re.search(r"withdrawn", page.inner_text("#review"))
        state.assert_clean("withdrawal")
    finally:
        state.context.close()
