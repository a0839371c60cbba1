"""Comparing versions in a real browser, under the real CSP: on the group page tick two versions, press
Compare, and see them side by side with the differing metric highlighted and marked in words; the group
page's trend chart and the comparison's charts render as server-side SVG with no CSP violation."""

from __future__ import annotations

import os
from typing import Any

import pytest
from playwright.sync_api import expect

from registry_app.models import ModelPackage
from tests.browser.watch import watch
from tests.factories import MetricFactory, UserFactory
from tests.views.test_review_support import package_in_state

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def group() -> None:
    for version, auc in ((1, 0.88), (2, 0.90), (3, 0.86)):
        package = package_in_state("approved" if version == 1 else "pending", version=version)
        package.reports.get().metrics.filter(name="auc").update(value=auc)
        MetricFactory(report=package.reports.get(), name="rmse", value=3.0, kind="regression")
    ModelPackage.objects.filter(version=3).update(
        inference_specification={"Containers": [{"Image": "registry.example/credit:3"}]}
    )


def test_tick_two_versions_and_compare(live_server: Any, browser: Any, group: None) -> None:
    user = UserFactory(username="reviewer")
    state = watch(browser)
    page = state.page
    try:
        state.log_in(live_server.url, user.get_username())
        page.goto(f"{live_server.url}/groups/credit-risk/")
        expect(page.get_by_role("img", name="Trend of auc")).to_be_visible()
        state.assert_clean("group page")
        if os.environ.get("SCREENSHOT_DIR"):
            page.screenshot(path=os.path.join(os.environ["SCREENSHOT_DIR"], "group.png"), full_page=True)

        page.get_by_label("Compare v1").check()
        page.get_by_label("Compare v3").check()
        page.get_by_role("button", name="Compare selected versions").click()
        page.wait_for_url("**/groups/credit-risk/compare/**")
        assert "versions=1" in page.url and "versions=3" in page.url

        expect(page.locator("h1")).to_contain_text("v1 · v3")
        metrics = page.locator("#cmp-metrics")
        auc = metrics.locator("tr.differs", has_text="auc")
        expect(auc).to_be_visible()
        expect(auc.locator(".diff-flag")).to_have_text("differs")
        expect(auc.locator(".delta-worse")).to_contain_text("worse")  # 0.86 against 0.88
        expect(metrics.locator("tr", has_text="rmse")).not_to_have_class("differs")
        expect(page.locator("#cmp-inference tr.differs").first).to_contain_text("registry.example/credit:3")
        # The highlight is more than colour: the row's background differs from an unchanged row's.
        changed = auc.locator("th").evaluate("e => getComputedStyle(e).backgroundColor")
        same = metrics.locator("tr", has_text="rmse").locator("th").evaluate("e => getComputedStyle(e).backgroundColor")
        assert changed != same
        if os.environ.get("SCREENSHOT_DIR"):
            page.screenshot(path=os.path.join(os.environ["SCREENSHOT_DIR"], "compare.png"), full_page=True)
        page.get_by_label("Show only the rows that differ").check()
        expect(metrics.locator("tr", has_text="rmse")).to_be_hidden()
        expect(auc).to_be_visible()
        state.assert_clean("compare page")
    finally:
        state.context.close()
