"""Issue 15: the revalidation card and actions on the review page, over HTTP (permissions, CSRF, 4xx)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from registry_app.models import ApprovalPolicy, Decision, ModelPackage, PushOutbox, Revalidation, RevalidationSignOff
from tests.views.test_review_support import XSS, client_for, package_in_state, persona_user, url

pytestmark = pytest.mark.django_db

ROLES = (("mlead", "ml-lead"), ("fair", "fairness"), ("comp", "compliance"))


@pytest.fixture(autouse=True)
def yearly() -> None:
    ApprovalPolicy.objects.create(
        name="high-risk", spec={"name": "high-risk", "revalidate_every_days": 365}, is_default=True
    )


def _due(days_ago: int = 380, **kw: Any) -> ModelPackage:
    package = package_in_state("approved", **kw)
    decision = Decision.objects.create(package=package, kind="policy", status="Approved")
    Decision.objects.filter(pk=decision.pk).update(created_at=timezone.now() - dt.timedelta(days=days_ago))
    return package


def test_the_card_shows_the_clock_and_the_form_to_role_holders() -> None:
    package = _due()
    page = client_for(persona_user("fair")).get(url("package_detail", package)).content.decode()
    assert 'id="revalidation"' in page and "Revalidation due" in page
    assert "every 365 days, 30 days' grace" in page
    assert 'name="role" id="id_revalidation_role"' in page and ">fairness</option>" in page
    viewer = client_for(persona_user("viewer")).get(url("package_detail", package)).content.decode()
    assert "Revalidation due" in viewer and "id_revalidation_role" not in viewer


def test_three_roles_revalidate_and_the_push_is_queued() -> None:
    package = _due()
    with mock.patch("registry_app.tasks.push_task.apply_async"):
        for name, role in ROLES:
            response = client_for(persona_user(name)).post(
                url("revalidation_signoff", package), {"decision": "approve", "role": role, "comment": "still fine"}
            )
            assert response.status_code == 302, response.content
    revalidation = Revalidation.objects.get()
    assert revalidation.outcome == Revalidation.Outcome.PASSED and revalidation.policy_name == "high-risk"
    assert PushOutbox.objects.get().flags == {"LastRevalidated": timezone.now().date().isoformat()}
    page = client_for(persona_user("viewer")).get(url("package_detail", package)).content.decode()
    assert 'badge-approved">passed' in page and "Current" in page


@pytest.mark.parametrize(
    ("persona", "data", "status"),
    [
        ("viewer", {"decision": "approve", "role": "fairness"}, 403),  # role not held
        ("fair", {"decision": "approve", "role": "ml-lead"}, 403),
        ("fair", {"decision": "maybe", "role": "fairness"}, 400),
        ("fair", {"decision": "reject", "role": "fairness"}, 400),  # a rejection needs a comment
        ("fair", {"decision": "approve"}, 400),  # no role
        ("fair", {"decision": "approve", "role": "x" * 65}, 400),
    ],
)
def test_refusals_are_4xx_and_write_nothing(persona: str, data: dict[str, str], status: int) -> None:
    package = _due()
    response = client_for(persona_user(persona)).post(url("revalidation_signoff", package), data)
    assert response.status_code == status
    assert not RevalidationSignOff.objects.exists()


def test_not_due_is_400_and_start_is_compliance_or_staff_only() -> None:
    package = _due(days_ago=10)
    response = client_for(persona_user("fair")).post(
        url("revalidation_signoff", package), {"decision": "approve", "role": "fairness"}
    )
    assert response.status_code == 400 and b"not due for revalidation" in response.content
    for persona in ("fair", "viewer", "nobody"):
        assert client_for(persona_user(persona)).post(url("revalidation_start", package)).status_code == 403
    assert not Revalidation.objects.exists()
    assert client_for(persona_user("comp")).post(url("revalidation_start", package)).status_code == 302
    assert Revalidation.objects.get().outcome == Revalidation.Outcome.IN_PROGRESS


def test_anonymous_get_and_unknown_package() -> None:
    package = _due()
    assert Client().post(url("revalidation_start", package)).status_code == 302  # to the login page
    client = client_for(persona_user("comp"))
    assert client.get(url("revalidation_start", package)).status_code == 405
    assert client.post("/packages/credit-risk/99/revalidation/start/").status_code == 404


def test_posts_without_csrf_token_are_403() -> None:
    package = _due()
    for target, data, user in (
        (url("revalidation_signoff", package), {"decision": "approve", "role": "fairness"}, persona_user("fair")),
        (url("revalidation_start", package), {}, persona_user("comp")),
    ):
        client = Client(enforce_csrf_checks=True)
        client.force_login(user)
        assert client.post(target, data).status_code == 403
    assert not Revalidation.objects.exists()


def test_a_failed_revalidation_offers_compliance_the_revocation_and_escapes_the_comment() -> None:
    package = _due()
    response = client_for(persona_user("fair")).post(
        url("revalidation_signoff", package), {"decision": "reject", "role": "fairness", "comment": XSS}
    )
    assert response.status_code == 302
    assert Revalidation.objects.get().outcome == Revalidation.Outcome.FAILED
    page = client_for(persona_user("comp")).get(url("package_detail", package)).content.decode()
    assert 'id="revalidation-failed"' in page and 'href="#revoke"' in page
    assert XSS not in page and "&lt;script&gt;" in page
    other = client_for(persona_user("mlead")).get(url("package_detail", package)).content.decode()
    assert 'id="revalidation-failed"' not in other


# --------------------------------------------------------------------------------------------- lists and counts


def _due_versions(count: int, prefix: str, days_ago: int = 380) -> list[ModelPackage]:
    return [_due(days_ago, group_name=f"{prefix}-{i}") for i in range(count)]


def _queries(client: Client, path: str, **params: str) -> tuple[int, str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path, params)
    assert response.status_code == 200
    return len(ctx.captured_queries), response.content.decode()


def test_queue_tab_lists_due_and_overdue_for_my_roles_with_constant_queries() -> None:
    from django.urls import reverse

    client = client_for(persona_user("fair"))
    _due_versions(2, "a")
    small, page = _queries(client, reverse("registry:queue"), tab="revalidation")
    assert page.count('class="revalidation-row"') == 2 and "badge-pending sla-due" in page
    _due_versions(5, "b")
    _due_versions(3, "c", days_ago=400)  # past the 30 days' grace
    large, page = _queries(client, reverse("registry:queue"), tab="revalidation")
    assert page.count('class="revalidation-row"') == 10 and page.count("badge-rejected sla-overdue") == 3
    assert "10 approved versions due or overdue for revalidation" in page
    assert small == large, (small, large)
    # The group filter applies; a viewer (no signing role) sees none.
    _, filtered = _queries(client, reverse("registry:queue"), tab="revalidation", group="c-0")
    assert filtered.count('class="revalidation-row"') == 1
    _, viewer = _queries(client_for(persona_user("viewer")), reverse("registry:queue"), tab="revalidation")
    assert 'class="revalidation-row"' not in viewer and "No approved version is due" in viewer


def test_group_page_column_shows_state_and_due_date_with_constant_queries() -> None:
    from django.urls import reverse

    client = client_for(persona_user("viewer"))
    package = _due(group_name="small")
    small, page = _queries(client, reverse("registry:group_detail", args=["small"]))
    assert '<th scope="col">Revalidation</th>' in page and "revalidation-due" in page
    for version in range(2, 12):
        package_in_state("approved", group_name="large", version=version)
    _due(group_name="large", version=12)
    large, page = _queries(client, reverse("registry:group_detail", args=["large"]))
    assert page.count("revalidation-due") == 1  # only the latest approved version is subject
    assert small == large, (small, large)
    assert package.pk


def test_review_page_queries_do_not_grow_with_revalidation_history() -> None:
    package = _due()
    for day in (300, 200, 100):
        Revalidation.objects.create(
            package=package,
            policy_name="high-risk",
            outcome=Revalidation.Outcome.PASSED,
            completed_at=timezone.now() - dt.timedelta(days=day + 400),
        )
    client = client_for(persona_user("fair"))
    small, _ = _queries(client, url("package_detail", package))
    with mock.patch("registry_app.tasks.push_task.apply_async"):
        client_for(persona_user("comp")).post(url("revalidation_start", package))
        client_for(persona_user("mlead")).post(
            url("revalidation_signoff", package), {"decision": "approve", "role": "ml-lead", "comment": "ok"}
        )
    for day in (90, 80, 70):  # more history rows (the card shows the last ten)
        Revalidation.objects.create(
            package=package,
            policy_name="high-risk",
            outcome=Revalidation.Outcome.PASSED,
            completed_at=timezone.now() - dt.timedelta(days=day + 700),
        )
    large, page = _queries(client, url("package_detail", package))
    assert "mlead (ml-lead, approve" in page
    assert large == small, (small, large)
