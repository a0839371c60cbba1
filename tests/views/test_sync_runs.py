"""/sync/runs/ (past runs, paged, per source) and /sync/runs/<id>/ (a run's page; htmx keeps polling)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from registry_app.mirror.run_history import RunFilters, run_list
from registry_app.models import SyncRun
from tests.factories import RegistrySourceFactory, SyncRunFactory

pytestmark = pytest.mark.django_db

LIST_URL = reverse("registry:sync_run_list")
ERRORS = [
    {"subject": "arn:aws:sagemaker:eu-west-1:1:model-package/x/1", "message": "AccessDenied on S3"},
    {"subject": "", "message": "<script>alert(1)</script>"},
]


def test_run_page_shows_its_errors_after_later_runs(reviewer_client: Client, registry_source) -> None:  # type: ignore[no-untyped-def]
    broken = SyncRunFactory(source=registry_source, status=SyncRun.Status.PARTIAL, errors=ERRORS)
    for _ in range(25):
        SyncRunFactory(source=registry_source)
    status_page = reviewer_client.get(reverse("registry:sync_status")).content.decode()
    assert "AccessDenied on S3" not in status_page  # gone from /sync/ ...
    assert f'href="{LIST_URL}?status=errors"' in status_page  # ... but reachable

    listing = reviewer_client.get(LIST_URL, {"status": "errors"})
    run_url = reverse("registry:sync_run_status", args=[broken.pk])
    assert listing.status_code == 200
    assert [r.pk for r in listing.context["page"].runs] == [broken.pk]
    assert f'href="{run_url}#errors"' in listing.content.decode()

    page = reviewer_client.get(run_url)
    html = page.content.decode()
    assert page.status_code == 200 and "<html" in html
    assert "AccessDenied on S3" in html and "Errors (2)" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "hx-trigger" not in html


def test_run_page_for_an_active_run_is_a_page_not_a_poll(reviewer_client: Client, registry_source) -> None:  # type: ignore[no-untyped-def]
    run = SyncRunFactory(source=registry_source, status=SyncRun.Status.RUNNING, finished_at=None, progress="Listing")
    url = reverse("registry:sync_run_status", args=[run.pk])
    page = reviewer_client.get(url)
    assert page.status_code == 200 and "<html" in page.content.decode() and "Listing" in page.content.decode()
    poll = reviewer_client.get(url, headers={"HX-Request": "true"})
    assert poll.status_code == 200 and "<html" not in poll.content.decode()
    assert "HX-Request" in page["Vary"] and "HX-Request" in poll["Vary"]
    run.status = SyncRun.Status.SUCCEEDED
    run.save()
    assert reviewer_client.get(url, headers={"HX-Request": "true"}).status_code == 286
    assert reviewer_client.get(url).status_code == 200


def test_list_is_newest_first_per_source_and_paged(reviewer_client: Client) -> None:
    a, b = RegistrySourceFactory(name="src-a"), RegistrySourceFactory(name="src-b")
    runs_a = [SyncRunFactory(source=a) for _ in range(5)]
    SyncRunFactory(source=b)
    page = run_list(RunFilters(source="src-a"), limit=2)
    seen = []
    while True:
        seen += [r.pk for r in page.runs]
        if page.older is None:
            break
        page = run_list(RunFilters(source="src-a", before=page.older), limit=2)
    assert seen == [r.pk for r in reversed(runs_a)]

    html = reviewer_client.get(LIST_URL, {"source": "src-b"}).content.decode()
    assert "src-b" in html and html.count('href="/sync/runs/') >= 1


@pytest.mark.parametrize(
    "query",
    [{"source": "../x"}, {"source": "a\x00"}, {"status": "BOGUS"}, {"before": "-1"}, {"before": "9" * 30}],
)
def test_bad_filters_are_400_naming_the_field(reviewer_client: Client, query: dict[str, str]) -> None:
    response = reviewer_client.get(LIST_URL, query)
    assert response.status_code == 400
    assert list(query)[0].encode() in response.content


def test_query_count_is_constant(reviewer_client: Client, registry_source, django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    SyncRunFactory(source=registry_source, errors=ERRORS)
    reviewer_client.get(LIST_URL)
    with django_assert_num_queries(5) as few:
        reviewer_client.get(LIST_URL)
    for _ in range(30):
        SyncRunFactory(source=RegistrySourceFactory(), errors=ERRORS, status=SyncRun.Status.PARTIAL)
    with django_assert_num_queries(len(few.captured_queries)):
        reviewer_client.get(LIST_URL)


def test_anonymous_is_sent_to_login(client: Client, registry_source) -> None:  # type: ignore[no-untyped-def]
    run = SyncRunFactory(source=registry_source)
    for url in (LIST_URL, reverse("registry:sync_run_status", args=[run.pk])):
        assert client.get(url).status_code == 302


def test_user_menu_links_profile_and_nav_links_endpoints(reviewer_client: Client) -> None:
    html = reviewer_client.get(LIST_URL).content.decode()
    assert f'href="{reverse("registry:profile")}"' in html
    assert f'href="{reverse("registry:endpoint_list")}"' in html
    assert reviewer_client.get(reverse("registry:profile")).status_code == 200
