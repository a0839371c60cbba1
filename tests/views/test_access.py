"""Every page needs a login; the sync trigger is POST-only and staff-only."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from registry_app.models import ModelPackageGroup
from tests.factories import SyncRunFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def urls(build_group) -> list[str]:  # type: ignore[no-untyped-def]
    group: ModelPackageGroup = build_group("credit-risk", 2)
    run = SyncRunFactory(source=group.source, status="running")  # a finished run answers 286
    return [
        reverse("registry:group_list"),
        reverse("registry:group_detail", args=[group.name]),
        reverse("registry:package_detail", args=[group.name, 1]),
        reverse("registry:sync_status"),
        reverse("registry:sync_run_status", args=[run.pk]),
    ]


def test_anonymous_users_are_sent_to_login(client: Client, urls: list[str]) -> None:
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"] == f"/accounts/login/?next={url}"


def test_anonymous_sync_request_is_sent_to_login(client: Client, registry_source) -> None:  # type: ignore[no-untyped-def]
    url = reverse("registry:sync_run", args=[registry_source.name])
    response = client.post(url, {"mode": "incremental"})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_logged_in_users_see_every_page(reviewer_client: Client, urls: list[str]) -> None:
    for url in urls:
        assert reviewer_client.get(url).status_code == 200, url


def test_home_redirects_to_groups(reviewer_client: Client) -> None:
    response = reviewer_client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/groups/"


def test_unknown_objects_are_404(reviewer_client: Client, build_group) -> None:  # type: ignore[no-untyped-def]
    build_group("credit-risk", 1)
    assert reviewer_client.get(reverse("registry:group_detail", args=["nope"])).status_code == 404
    assert reviewer_client.get(reverse("registry:package_detail", args=["credit-risk", 99])).status_code == 404
    assert reviewer_client.get(reverse("registry:package_detail", args=["nope", 1])).status_code == 404
    assert reviewer_client.get(reverse("registry:sync_run_status", args=[987654])).status_code == 404
    url = reverse("registry:group_detail", args=["credit-risk"]) + "?source=elsewhere"
    assert reviewer_client.get(url).status_code == 404
