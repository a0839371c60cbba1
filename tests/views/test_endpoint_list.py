"""/endpoints/: live endpoints with what they serve, since when, approval state and rollback candidate."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from registry_app.audit.endpoint_list import EndpointCursor, endpoint_list
from registry_app.audit.endpoints import endpoint_overview
from registry_app.audit.rollback import rollback_plan
from registry_app.models import EndpointDeployment
from registry_app.models.registry import ApprovalStatus
from tests.factories import (
    EndpointFactory,
    EndpointVariantFactory,
    ModelPackageFactory,
    ModelPackageGroupFactory,
    RegistrySourceFactory,
)

pytestmark = pytest.mark.django_db

URL = reverse("registry:endpoint_list")


def _serving(name: str, *, versions: int = 3, source=None):  # type: ignore[no-untyped-def]
    source = source or RegistrySourceFactory(name="prod-eu")
    group = ModelPackageGroupFactory(source=source, name=f"{name}-group")
    packages = [
        ModelPackageFactory(group=group, version=v, approval_status=ApprovalStatus.APPROVED)
        for v in range(1, versions + 1)
    ]
    endpoint = EndpointFactory(source=source, name=name)
    variant = EndpointVariantFactory(endpoint=endpoint, variant_name="AllTraffic", package=packages[-1])
    return endpoint, variant, packages


def test_list_shows_serving_version_since_approval_and_rollback(reviewer_client: Client) -> None:
    endpoint, variant, packages = _serving("Credit-Risk-Prod")
    ModelPackageFactory(group=packages[0].group, version=10, approval_status=ApprovalStatus.PENDING)
    since = timezone.now() - dt.timedelta(days=3)
    EndpointDeployment.objects.create(
        endpoint_name="credit-risk-prod", variant_name="AllTraffic", package=packages[-1], started_at=since
    )
    EndpointDeployment.objects.create(
        endpoint_name="credit-risk-prod",
        variant_name="AllTraffic",
        package=packages[0],
        started_at=since - dt.timedelta(days=9),
        ended_at=since,
    )

    response = reviewer_client.get(URL)
    html = response.content.decode()

    assert response.status_code == 200
    row = response.context["page"].rows[0]
    assert row.endpoint == endpoint
    assert row.serving[0].package == packages[-1]
    assert row.serving[0].since == since
    # Approved in the registry with no dashboard decision: the list says so, in the banner's words.
    assert row.serving[0].status.label == "Approved" and "set outside the dashboard" in html
    # v1 served this endpoint before v3 and is Approved: the endpoint page's rollback plan says the same
    assert row.serving[0].rollback == packages[0]
    plan = rollback_plan(endpoint_overview("Credit-Risk-Prod"))  # type: ignore[arg-type]
    assert plan is not None and plan.candidate == packages[0]
    assert f'href="{reverse("registry:endpoint_detail", args=["Credit-Risk-Prod"])}"' in html
    assert f'href="{reverse("registry:package_detail", args=[packages[-1].group.name, 3])}"' in html
    assert f'href="{reverse("registry:package_detail", args=[packages[-1].group.name, 1])}"' in html
    assert "#rollback-plan" in html
    assert f'href="{URL}"' in html  # the main nav links the list


def test_rollback_without_history_is_the_highest_earlier_approved(reviewer_client: Client) -> None:
    _, _, packages = _serving("ep-nohistory")
    ModelPackageFactory(group=packages[0].group, version=10, approval_status=ApprovalStatus.PENDING)
    row = endpoint_list().rows[0]
    assert row.serving[0].rollback == packages[1]  # v2, not v10 (later) nor v1 (lower)
    plan = rollback_plan(endpoint_overview("ep-nohistory"))  # type: ignore[arg-type]
    assert plan is not None and plan.candidate == packages[1]


def test_rollback_skips_rejected_and_deleted_versions(reviewer_client: Client) -> None:
    _, _, packages = _serving("ep-a", versions=4)
    packages[2].approval_status = ApprovalStatus.REJECTED
    packages[2].save()
    packages[1].deleted_at = timezone.now()
    packages[1].save()
    page = endpoint_list()
    assert page.rows[0].serving[0].rollback == packages[0]


def test_no_rollback_and_unknown_since(reviewer_client: Client) -> None:
    _serving("ep-first", versions=1)
    response = reviewer_client.get(URL)
    html = response.content.decode()
    assert "no earlier Approved version" in html and "unknown" in html


def test_deleted_endpoints_are_not_listed_and_variantless_are(reviewer_client: Client) -> None:
    EndpointFactory(name="gone", deleted_at=timezone.now())
    EndpointFactory(name="empty-endpoint")
    html = reviewer_client.get(URL).content.decode()
    assert "empty-endpoint" in html and "No variants in the mirror." in html
    assert ">gone<" not in html


def test_anonymous_is_sent_to_login(client: Client) -> None:
    response = client.get(URL)
    assert response.status_code == 302 and "/login" in response["Location"]


def test_keyset_pages_cover_every_endpoint_once(reviewer_client: Client) -> None:
    source = RegistrySourceFactory(name="prod-eu")
    for i in range(7):
        EndpointFactory(source=source, name=f"ep-{i % 3}", arn=f"arn:aws:sagemaker:eu-west-1:1:endpoint/ep-{i}")
    seen: list[int] = []
    page = endpoint_list(limit=3)
    while True:
        seen += [row.endpoint.pk for row in page.rows]
        if page.after is None:
            break
        page = endpoint_list(after=EndpointCursor.decode(page.after.encode()), limit=3)
    assert len(seen) == 7 == len(set(seen))

    first = reviewer_client.get(URL)
    assert first.context["page"].after is None  # 7 < one page
    bad = reviewer_client.get(URL, {"after": "!!!"})
    assert bad.status_code == 400 and b"after" in bad.content


@pytest.mark.parametrize("token", ["=", "MHw", "LTF8eA", "eHx5", "OTk5OTk5OTk5OTk5OTk5OTk5OTk5fHg", "MXwA"])
def test_hostile_cursors_are_refused(token: str) -> None:
    with pytest.raises(ValueError):
        EndpointCursor.decode(token)


def test_query_count_is_constant(reviewer_client: Client, django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    source = RegistrySourceFactory(name="prod-eu")
    _serving("ep-0", source=source)
    reviewer_client.get(URL)  # warm the session and the user
    with django_assert_num_queries(8) as few:  # session, user, nav badge + 3 + the versions' status (2)
        reviewer_client.get(URL)
    for i in range(1, 12):
        endpoint, _, packages = _serving(f"ep-{i}", source=source)
        EndpointVariantFactory(endpoint=endpoint, variant_name="Canary", package=packages[0], weight=0.1)
    with django_assert_num_queries(len(few.captured_queries)):
        response = reviewer_client.get(URL)
    assert len(response.context["page"].rows) == 12
    # The approval column says what the review page's banner says, not the bare registry status.
    assert all(s.status is not None for row in response.context["page"].rows for s in row.serving if s.package)
