"""A person's flow in a real browser: three reviewers open the emailed link, log in, and sign off.

Real pieces: Debian's Chromium (Playwright), Django's live server, a Celery worker on the
configured broker, moto (in-process) as SageMaker and S3. The third sign-off must lead to
Approved in the registry itself, with each role's flag.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from django.contrib.auth.models import Group, User

from registry_app.mirror.execute import sync_source
from registry_app.models import ModelPackage, RegistrySource
from tests import aws_helpers as h

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PASSWORD = "browser-test-pw-1!"
REVIEWERS = (("mlead", "ml-lead"), ("fairness", "fairness"), ("compliance", "compliance"))


def wait_until(predicate: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_three_reviewers_sign_off_from_emailed_links(  # type: ignore[no-untyped-def]
    live_server, browser, mailoutbox, aws, celery_worker_live, settings
) -> None:
    settings.SITE_URL = live_server.url
    sm, s3 = h.clients()
    h.make_bucket(s3)
    report = h.put_json(s3, "credit/1/evaluation.json", h.BINARY_REPORT)
    h.create_group(sm, "credit-risk", "Retail credit PD")
    arn = h.create_package(sm, "credit-risk", report_uri=report, metadata={"GitCommitSha": "0123abc", "owner": "risk"})
    for username, role in REVIEWERS:
        user = User.objects.create_user(username, f"{username}@acme.example", PASSWORD)
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    source = RegistrySource.objects.create(name="prod", region=h.REGION)

    # The mirror first sees the pending package: every required-role holder is emailed.
    sync_source(source, mode="full")
    wait_until(lambda: len(mailoutbox) >= 3, what="three review-request emails")
    links = {}
    for message in mailoutbox:
        match = re.search(re.escape(live_server.url) + r"/packages/credit-risk/1/\S*", message.body)
        assert match, message.body
        links[message.to[0].split("@")[0]] = match.group(0).rstrip(".)>\"'")
    assert set(links) == {u for u, _ in REVIEWERS}

    for username, _role in REVIEWERS:
        context = browser.new_context()
        page = context.new_page()
        page.goto(links[username])
        # The link leads through login back to the review page.
        assert "/accounts/login/" in page.url
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r".*/packages/credit-risk/1/.*"))
        page.get_by_label("Comment").fill(f"Reviewed by {username}: metrics and card fine.")
        page.get_by_role("button", name="Approve", exact=True).click()
        page.wait_for_load_state("networkidle")
        assert page.get_by_text(re.compile(r"approv", re.I)).first.is_visible()
        context.close()

    # The third sign-off satisfied the policy: the push reaches the registry (worker) ...
    def registry_status() -> str | None:
        described = sm.describe_model_package(ModelPackageName=arn)
        return described if described.get("ModelApprovalStatus") == "Approved" else None

    described = wait_until(registry_status, timeout=45, what="Approved in the registry")
    flags = described["CustomerMetadataProperties"]
    assert flags["MLEngineerApproved"] == flags["FairnessApproved"] == flags["ComplianceApproved"] == "true"
    assert flags["owner"] == "risk"  # existing metadata kept
    assert "mlead" in described["ApprovalDescription"]
    # ... and the mirror shows it without waiting for a sync.
    wait_until(lambda: ModelPackage.objects.get(arn=arn).approval_status == "Approved", what="mirror shows Approved")
