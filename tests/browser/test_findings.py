"""Issue 15 in Chromium: a fairness reviewer approves with a condition; the compliance officer later
closes that finding with evidence.

Real pieces: Debian's Chromium, Django's live server, the real CSP, htmx. Celery sends are recorded
instead of sent (as in test_status_truth).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from registry_app.models import Decision, Finding, ModelPackage, SignOff
from tests.browser.test_status_truth import review_path, session
from tests.views.test_review_support import package_in_state, persona_user, signoff_row

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EVIDENCE = "https://wiki.example.com/models/credit-risk/dppl-monitoring"


@pytest.fixture
def quiet_tasks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, object]]:
    """Record Celery sends instead of leaving messages on the broker for a later test's worker."""
    from celery.app.task import Task

    sent: list[tuple[str, object]] = []
    monkeypatch.setattr(Task, "apply_async", lambda self, args=None, kwargs=None, **_: sent.append((self.name, args)))
    return sent


def test_approve_with_a_condition_then_compliance_closes_it(live_server, browser, quiet_tasks) -> None:  # type: ignore[no-untyped-def]
    package: ModelPackage = package_in_state("pending")
    signoff_row(package, persona_user("mlead"), "ml-lead")
    persona_user("fair")
    persona_user("comp")

    fair = session(browser, live_server.url, "fair")
    page = fair.page
    try:
        page.goto(live_server.url + review_path(package))
        page.locator("#conditions summary").click()
        page.locator("#id_cond_title_0").fill("Monitor DPPL by age band monthly")
        page.locator("#id_cond_severity_0").select_option("medium")
        page.locator("#id_cond_owner_0").fill("mlead")
        page.locator("#id_cond_due_0").fill("2099-03-01")
        page.get_by_label("Comment").fill("Fair across facets; approve with a monitoring condition.")
        with page.expect_response(lambda r: "/signoff/" in r.url) as signed:
            page.get_by_role("button", name="Approve", exact=True).click()
        assert signed.value.status == 200
        expect(page.locator("#review")).to_contain_text("Your approval as fairness was recorded.")
        finding = Finding.objects.get()
        expect(page.locator("#findings")).to_contain_text(finding.ref)
        expect(page.locator("#findings")).to_contain_text("Monitor DPPL by age band monthly")
        assert finding.signoff == SignOff.objects.get(user__username="fair")
        fair.assert_clean("approve with a condition")
    finally:
        fair.context.close()

    comp = session(browser, live_server.url, "comp")
    page = comp.page
    try:
        page.goto(live_server.url + review_path(package))
        page.get_by_role("button", name="Approve", exact=True).click()
        page.wait_for_load_state("networkidle")
        decision = Decision.objects.get(package=package)
        assert f"Conditions: {finding.ref} Monitor DPPL by age band monthly (due 2099-03-01)" in decision.description
        page.goto(live_server.url + review_path(package))
        expect(page.locator("#review")).to_contain_text("Approved with conditions:")
        row = page.locator(f"#finding-{finding.pk}")
        row.locator("summary", has_text="Close with evidence").click()
        row.get_by_label("Closing comment").fill("Monthly DPPL monitor live in the dashboard.")
        row.get_by_label("Evidence link (https://…)").fill(EVIDENCE)
        with page.expect_response(lambda r: f"/findings/{finding.pk}/close/" in r.url) as closed:
            row.get_by_role("button", name="Close finding").click()
        assert closed.value.status == 200
        expect(page.locator("#review")).to_contain_text(f"Finding {finding.ref} was closed.")
        expect(page.locator(f"#finding-{finding.pk}")).to_contain_text("Closed")
        expect(page.locator(f'#finding-{finding.pk} a[href="{EVIDENCE}"]')).to_be_visible()
        finding.refresh_from_db()
        assert finding.state == Finding.State.CLOSED and finding.closed_by.username == "comp"
        comp.assert_clean("close with evidence")
    finally:
        comp.context.close()
