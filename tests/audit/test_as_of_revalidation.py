"""Issue 15: the as-of answer states whether the version serving at T was within its revalidation period at T."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from registry_app.audit.as_of import as_of
from registry_app.audit.as_of_evidence import Fact
from registry_app.models import ApprovalPolicy, ModelPackage, Revalidation
from registry_app.models.registry import ApprovalStatus
from tests.audit.builders import at, cloudtrail, decision, deployment, observe
from tests.factories import EndpointFactory, ModelPackageFactory, ModelPackageGroupFactory, RegistrySourceFactory

pytestmark = pytest.mark.django_db

ENDPOINT = "credit-prod"
DAY = 24.0


@pytest.fixture
def served() -> ModelPackage:
    ApprovalPolicy.objects.create(
        name="high", spec={"name": "high", "revalidate_every_days": 30, "revalidation_grace_days": 10}, is_default=True
    )
    source = RegistrySourceFactory(name="prod-eu")
    group = ModelPackageGroupFactory(source=source, name="credit-risk")
    v1 = ModelPackageFactory(group=group, version=1, approval_status=ApprovalStatus.APPROVED)
    observe(v1, at(-48), {"approval_status": [None, "PendingManualApproval"]}, change="created")
    decision(v1, "Approved", at(-1))
    created = cloudtrail("CreateEndpoint", at(0), endpoint_name=ENDPOINT, actor="deployer")
    EndpointFactory(source=source, name=ENDPOINT, created_at=at(0))
    deployment(ENDPOINT, v1, at(0), None, evidence={"events": {"deploy": created.event_id}})
    return v1


def _fact(when: dt.datetime) -> Fact:
    answer = as_of(ENDPOINT, when)
    (variant,) = answer.variants
    return next(f for f in variant.package.facts if f.name == "revalidation")


def test_within_then_due_then_overdue_then_within_after_a_revalidation(served: ModelPackage) -> None:
    within = _fact(at(5 * DAY))
    assert within.value.startswith("within its revalidation period") and "never revalidated" in within.value
    assert within.evidence[0].ref.startswith("decision:")
    assert _fact(at(35 * DAY)).value.startswith("past its revalidation date")
    assert _fact(at(45 * DAY)).value.startswith("OVERDUE for revalidation")

    passed = Revalidation.objects.create(
        package=served, policy_name="high", outcome=Revalidation.Outcome.PASSED, completed_at=at(44 * DAY)
    )
    after = _fact(at(45 * DAY))
    assert after.value.startswith("within its revalidation period") and "last revalidated" in after.value
    assert f"revalidation:{passed.pk}" in [e.ref for e in after.evidence]
    # Known only from day 44: the answer for day 43 is still "overdue".
    assert _fact(at(43 * DAY)).value.startswith("OVERDUE")


def test_the_policy_version_in_force_at_t_decides(served: ModelPackage) -> None:
    """Versioned policies: an edit published today (no revalidation any more) does not rewrite what
    the answer for a past T says; an answer for a time after it uses it."""
    policy = ApprovalPolicy.objects.get(name="high")
    policy.spec = {"name": "high"}
    policy.save()  # publishes high v2
    assert _fact(at(400 * DAY)).value.startswith("OVERDUE")  # v1 was in force then
    assert _fact(timezone.now()).value.startswith("not required")  # v2 is in force now


def test_the_page_and_the_json_state_it(served: ModelPackage) -> None:
    from tests.personas import make_user

    client = Client()
    client.force_login(make_user("vera", "viewer"))
    when = at(45 * DAY).isoformat().replace("+00:00", "Z")
    page = client.get(reverse("registry:as_of"), {"endpoint": ENDPOINT, "at": when}).content.decode()
    assert "revalidation" in page and "OVERDUE for revalidation" in page
    facts = as_of(ENDPOINT, at(45 * DAY)).as_dict()["variants"][0]["package"]["facts"]
    assert any(f["fact"] == "revalidation" and f["value"].startswith("OVERDUE") for f in facts)
