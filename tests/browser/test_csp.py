"""In Chromium, with the real CSP header: no page reports a violation, and htmx still works.

Logs in through the real login form with login throttling (axes) switched on, as in production,
then opens every main page and drives the htmx features: the group list's live search, the queue
filter, a sign-off posted from the review page, and the sync progress that polls every 2 s and
stops when the run ends. Any ``securitypolicyviolation`` event, CSP console message or page error
fails the test.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import override_settings
from playwright.sync_api import expect

from registry_app.models import SignOff, SyncRun
from tests.browser.watch import watch
from tests.hostile import benign_texts, build_site

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def quiet_tasks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Record Celery sends instead of leaving messages on the broker for a later test's worker."""
    from celery.app.task import Task

    sent: list[tuple[str, Any]] = []
    monkeypatch.setattr(Task, "apply_async", lambda self, args=None, kwargs=None, **_: sent.append((self.name, args)))
    return sent


@override_settings(AXES_ENABLED=True)
def test_main_pages_report_no_csp_violation(live_server, browser, quiet_tasks) -> None:  # type: ignore[no-untyped-def]
    site = build_site(benign_texts())
    state = watch(browser)
    try:
        state.log_in(live_server.url, site.user.get_username())
        state.assert_clean("after login")
        pages = dict(site.pages)
        pages["admin index"] = "/admin/"
        for label, path in pages.items():
            response = state.page.goto(live_server.url + path)
            assert response is not None and response.status == 200, f"{label}: {response and response.status}"
            state.page.wait_for_load_state("load")
            state.assert_clean(label)
            if label == "admin index":
                continue
            # htmx read its config from the meta tag: no eval, no swapped-in scripts, no injected <style>.
            config = state.page.evaluate(
                "[htmx.config.allowEval, htmx.config.allowScriptTags, htmx.config.includeIndicatorStyles]"
            )
            assert config == [False, False, False], label
    finally:
        state.context.close()


def test_htmx_features_work_under_the_csp(live_server, browser, quiet_tasks) -> None:  # type: ignore[no-untyped-def]
    site = build_site(benign_texts())
    state = watch(browser)
    page = state.page
    try:
        state.log_in(live_server.url, site.user.get_username())

        # 1. Group list: typing searches live (hx-trigger "input changed delay:300ms").
        page.goto(f"{live_server.url}/groups/")
        with page.expect_response(lambda r: "/groups/?" in r.url and "q=no-such-group" in r.url) as searched:
            page.fill("#id_q", "no-such-group")
        assert searched.value.request.headers.get("hx-request") == "true"
        expect(page.locator("#group-table")).not_to_contain_text("zq00q")
        page.fill("#id_q", "")
        expect(page.locator("#group-table")).to_contain_text("zq00q")
        state.assert_clean("group search")

        # 2. Queue: the filter form swaps only the list and pushes the URL.
        page.goto(f"{live_server.url}/queue/?tab=all")
        assert "zq00q" in page.inner_text("#queue-list")
        page.fill("input[name=group]", "another-group")
        with page.expect_response(lambda r: "/queue/?" in r.url and "group=another-group" in r.url) as filtered:
            page.click("form.filters button[type=submit]")
        assert filtered.value.request.headers.get("hx-request") == "true"
        expect(page.locator("#queue-list")).to_contain_text("another-group")
        assert "group=another-group" in page.url
        state.assert_clean("queue filter")

        # 3. Review page: a sign-off posts through htmx and the panel is swapped in place.
        page.goto(live_server.url + site.pages["review page"])
        page.get_by_label("Comment").fill("Metrics and card reviewed in the browser.")
        with page.expect_response(lambda r: "/signoff/" in r.url) as signed:
            page.get_by_role("button", name="Approve", exact=True).click()
        assert signed.value.status == 200
        assert signed.value.request.headers.get("hx-request") == "true"
        page.wait_for_load_state("networkidle")
        assert SignOff.objects.filter(package=site.package, user=site.user).count() == 1
        assert page.url.endswith(site.pages["review page"])  # no full navigation happened
        state.assert_clean("sign-off")

        # 4. Sync: "Sync now" shows the run, which polls itself every 2 s until it ends (HTTP 286).
        page.goto(f"{live_server.url}/sync/")
        with page.expect_response(lambda r: re.search(r"/sync/[^/]+/run/$", r.url) is not None):
            page.locator("form[hx-post] button").first.click()
        run = SyncRun.objects.get(trigger=SyncRun.Trigger.MANUAL)
        assert ("registry_app.tasks.sync_registry", (run.pk,)) in quiet_tasks
        with page.expect_response(lambda r: r.url.endswith(f"/sync/runs/{run.pk}/"), timeout=10_000) as polled:
            pass
        assert polled.value.status == 200  # still queued: keep polling
        SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.Status.SUCCEEDED, finished_at=run.queued_at)
        with page.expect_response(lambda r: r.url.endswith(f"/sync/runs/{run.pk}/"), timeout=10_000) as final:
            pass
        assert final.value.status == 286
        expect(page.locator(f"#run-progress-{run.pk}")).not_to_have_class(re.compile(r"is-active"))
        expect(page.locator(f"#run-progress-{run.pk}")).to_contain_text("Finished")
        polls = len([url for url in state.htmx_requests if url.endswith(f"/sync/runs/{run.pk}/")])
        page.wait_for_timeout(2500)  # one poll interval: a stopped poll sends nothing more
        assert len([url for url in state.htmx_requests if url.endswith(f"/sync/runs/{run.pk}/")]) == polls
        state.assert_clean("sync progress")
    finally:
        state.context.close()
