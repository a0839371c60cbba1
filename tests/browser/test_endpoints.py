"""The endpoint list and the endpoint page's "As of…" link, in a real browser under the real CSP:
from the main nav to /endpoints/, to an endpoint, to its as-of answer (not a 400), pre-filled with
the endpoint and now; the sync runs list opens a run's page with its errors."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from registry_app.models import EndpointDeployment, SyncRun
from registry_app.models.registry import ApprovalStatus
from tests.browser.watch import watch
from tests.factories import (
    EndpointFactory,
    EndpointVariantFactory,
    ModelPackageFactory,
    ModelPackageGroupFactory,
    RegistrySourceFactory,
    SyncRunFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def serving() -> dict[str, Any]:
    source = RegistrySourceFactory(name="prod-eu")
    group = ModelPackageGroupFactory(source=source, name="credit-risk")
    v1 = ModelPackageFactory(group=group, version=1, approval_status=ApprovalStatus.APPROVED)
    v2 = ModelPackageFactory(group=group, version=2, approval_status=ApprovalStatus.APPROVED)
    endpoint = EndpointFactory(source=source, name="credit-prod")
    EndpointVariantFactory(endpoint=endpoint, variant_name="AllTraffic", package=v2)
    start = timezone.now() - dt.timedelta(days=3)
    EndpointDeployment.objects.create(
        endpoint_name="credit-prod", variant_name="AllTraffic", package=v2, started_at=start
    )
    run = SyncRunFactory(
        source=source, status=SyncRun.Status.PARTIAL, errors=[{"subject": "x", "message": "S3 denied"}]
    )
    return {"v1": v1, "v2": v2, "run": run}


def test_endpoint_list_and_as_of_link(live_server: Any, browser: Any, serving: dict[str, Any]) -> None:
    user = UserFactory(username="reviewer")
    state = watch(browser)
    page = state.page
    try:
        state.log_in(live_server.url, user.get_username())
        page.goto(f"{live_server.url}/groups/")
        page.locator("header nav").get_by_role("link", name="Endpoints").click()
        page.wait_for_url("**/endpoints/")
        table = page.locator("table.endpoint-list")
        expect(table).to_contain_text("credit-prod")
        expect(table).to_contain_text("credit-risk v2")  # serving
        expect(table).to_contain_text("credit-risk v1")  # rollback candidate
        expect(table).to_contain_text("Approved")
        state.assert_clean("endpoint list")

        table.get_by_role("link", name="credit-prod").click()
        page.wait_for_url("**/endpoints/credit-prod/")
        with page.expect_response(lambda r: "/as-of/" in r.url) as answered:
            page.get_by_role("link", name="As of…").click()
        assert answered.value.status == 200
        expect(page.locator("input[name=endpoint]")).to_have_value("credit-prod")
        picker = page.locator("input[name=at]")
        assert picker.get_attribute("type") == "datetime-local"
        assert picker.input_value()[:10] == timezone.now().strftime("%Y-%m-%d")
        expect(page.locator("#answer-title")).to_contain_text("credit-prod")
        expect(page.locator(".as-of-variant")).to_contain_text("AllTraffic")
        state.assert_clean("as-of answer")

        # The date picker's own value is accepted when the form is sent again.
        page.get_by_role("button", name="Answer").click()
        page.wait_for_load_state()
        expect(page.locator("#answer-title")).to_contain_text("credit-prod")

        page.get_by_role("link", name="Profile").click()
        page.wait_for_url("**/profile/")

        page.goto(f"{live_server.url}/sync/runs/")
        page.get_by_role("link", name=f"#{serving['run'].pk}", exact=True).click()
        page.wait_for_url(f"**/sync/runs/{serving['run'].pk}/")
        expect(page.locator("#errors")).to_contain_text("S3 denied")
        state.assert_clean("sync run page")
    finally:
        state.context.close()
