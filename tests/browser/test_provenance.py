"""Provenance in a real browser, under the real CSP: a registry with training jobs and lineage (the
AWS-faithful fake, in-process) is synced; the review page shows the Provenance section with the
hyperparameters, the differences from the approved version and the lineage SVG; a data channel leads
to the impact page, which lists both packages trained on it and downloads them as CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from registry_app.mirror.execute import sync_source
from registry_app.models import RegistrySource, SyncRun
from tests import aws_helpers as h
from tests.browser.watch import watch
from tests.factories import UserFactory
from tests.mirror.test_provenance_sync import lineage_for, training_job

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHARED = "s3://data/shared/customers/2025-01/"


@pytest.fixture
def synced(aws: None) -> RegistrySource:
    sm, s3 = h.clients()
    h.make_bucket(s3)
    h.create_group(sm, "credit-risk")
    approved = h.create_package(sm, "credit-risk", status="Approved")
    pending = h.create_package(sm, "credit-risk")
    training_job(sm, "credit-v1", data=SHARED, eta="0.1")
    training_job(sm, "credit-v2", data=SHARED, eta="0.05")
    lineage_for(sm, approved, "credit-v1", SHARED)
    lineage_for(sm, pending, "credit-v2", SHARED)
    source = RegistrySource.objects.create(name="prod", region=h.REGION)
    run = sync_source(source, mode=SyncRun.Mode.FULL)
    assert run.status == SyncRun.Status.SUCCEEDED, run.errors
    return source


def test_provenance_section_and_impact_page(live_server: Any, browser: Any, synced: RegistrySource) -> None:
    user = UserFactory(username="reviewer")
    state = watch(browser)
    page = state.page
    try:
        state.log_in(live_server.url, user.get_username())
        page.goto(f"{live_server.url}/packages/credit-risk/2/")
        section = page.locator("#provenance")
        expect(section).to_be_visible()
        expect(section).to_contain_text("credit-v2")
        expect(page.locator("#hyperparameters")).to_contain_text("eta")
        expect(page.locator("#hyperparameters tr.is-changed")).to_contain_text("0.05")
        expect(page.locator("#training-diff")).to_contain_text("0.1")  # the approved version's eta
        graph = section.locator("svg.lineage-graph")
        expect(graph).to_be_visible()
        assert graph.locator("g.lineage-node").count() >= 4  # data, training job, model, this package
        state.assert_clean("review page")

        # The shared data channel leads to every package trained on it.
        section.locator("#channels a", has_text=SHARED).click()
        page.wait_for_url("**/lineage/?data=*")
        results = page.locator("#impact-results")
        expect(results).to_contain_text("2 packages trained on or evaluated with")
        expect(results).to_contain_text("credit-risk v1")
        expect(results).to_contain_text("credit-risk v2")
        state.assert_clean("impact page")

        with page.expect_download() as download:
            page.get_by_role("link", name="Download CSV").click()
        rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
        assert sorted((r["group"], r["version"], r["approval_status"]) for r in rows) == [
            ("credit-risk", "1", "Approved"),
            ("credit-risk", "2", "PendingManualApproval"),
        ]
    finally:
        state.context.close()
