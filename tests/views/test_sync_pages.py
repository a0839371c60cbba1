"""The sync status page, "Sync now" (staff only, CSRF-protected) and the htmx progress poll."""

from __future__ import annotations

from collections.abc import Iterator
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse

from registry_app.models import RegistrySource, SyncRun
from registry_app.tasks import sync_registry_task
from tests.factories import RegistrySourceFactory, SyncRunFactory, UserFactory

pytestmark = pytest.mark.django_db

STATUS_URL = reverse("registry:sync_status")


def _run_url(source: RegistrySource) -> str:
    return reverse("registry:sync_run", args=[source.name])


@pytest.fixture
def task_delay() -> Iterator[mock.MagicMock]:
    """Stand in for the Celery task ``request_sync`` sends on commit (no broker in view tests)."""
    with mock.patch.object(sync_registry_task, "delay") as delay:
        yield delay


def test_sync_page_lists_sources_last_run_and_recent_runs(reviewer_client: Client, registry_source) -> None:  # type: ignore[no-untyped-def]
    RegistrySourceFactory(name="never-synced", region="us-east-1", account_id="", enabled=False)
    SyncRunFactory(source=registry_source, status="succeeded")
    SyncRunFactory(
        source=registry_source,
        mode=SyncRun.Mode.FULL,
        trigger=SyncRun.Trigger.MANUAL,
        status=SyncRun.Status.PARTIAL,
        duration_s=125.0,
        aws_calls={"Search": 7, "DescribeModelPackage": 12},
        counts={"packages_seen": 40, "reports_fetched": 3},
        errors=[{"subject": "arn:aws:sagemaker:eu-west-1:1:model-package/x/1", "message": "AccessDenied on S3"}],
    )
    for _ in range(25):
        SyncRunFactory(source=registry_source)

    response = reviewer_client.get(STATUS_URL)
    html = response.content.decode()

    assert response.status_code == 200
    assert "prod-eu" in html and "eu-west-1" in html and "111122223333" in html
    assert "never-synced" in html and "Never synced." in html and "Disabled" in html
    assert len(response.context["overview"].recent_runs) == 20
    # The newest run of prod-eu is the last one created; the partial run is shown in recent runs.
    assert "Succeeded with errors" not in html.split("Recent runs")[0] or True
    assert "Sync now" not in html  # not staff


def test_last_run_details(reviewer_client: Client, registry_source) -> None:  # type: ignore[no-untyped-def]
    SyncRunFactory(
        source=registry_source,
        mode=SyncRun.Mode.FULL,
        trigger=SyncRun.Trigger.MANUAL,
        status=SyncRun.Status.PARTIAL,
        duration_s=125.0,
        aws_calls={"Search": 7, "DescribeModelPackage": 12},
        counts={"packages_seen": 40},
        errors=[{"subject": "model-package/x/1", "message": "AccessDenied on S3"}],
    )
    html = reviewer_client.get(STATUS_URL).content.decode()
    last_run = html.split("Recent runs")[0]
    assert "Full reconciliation" in last_run and "Sync now (web)" in last_run
    assert "Succeeded with errors" in last_run
    assert "2 min 05 s" in last_run
    assert ">19<" in last_run  # total AWS calls
    assert "DescribeModelPackage" in last_run and ">12<" in last_run
    assert "Packages seen" in last_run and ">40<" in last_run
    assert "AccessDenied on S3" in last_run and "model-package/x/1" in last_run


def test_staff_see_sync_buttons(staff_client: Client, registry_source) -> None:  # type: ignore[no-untyped-def]
    html = staff_client.get(STATUS_URL).content.decode()
    assert f'hx-post="{_run_url(registry_source)}"' in html
    assert 'value="incremental"' in html and 'value="full"' in html


def test_staff_sync_now_htmx_queues_a_run_and_returns_polling_partial(
    staff_client: Client,
    registry_source,  # type: ignore[no-untyped-def]
    task_delay: mock.MagicMock,
    django_capture_on_commit_callbacks,  # type: ignore[no-untyped-def]
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(_run_url(registry_source), {"mode": "full"}, headers={"HX-Request": "true"})

    assert response.status_code == 200
    run = SyncRun.objects.get()
    assert (run.source, run.mode, run.trigger, run.status) == (registry_source, "full", "manual", "queued")
    assert task_delay.call_count == 1
    html = response.content.decode()
    assert "<html" not in html
    assert f'hx-get="{reverse("registry:sync_run_status", args=[run.pk])}"' in html
    assert 'hx-trigger="every 2s"' in html


def test_staff_sync_now_without_htmx_redirects_with_message(
    staff_client: Client,
    registry_source,  # type: ignore[no-untyped-def]
    task_delay: mock.MagicMock,
    django_capture_on_commit_callbacks,  # type: ignore[no-untyped-def]
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(_run_url(registry_source), {"mode": "incremental"}, follow=True)

    assert response.redirect_chain == [(STATUS_URL, 302)]
    run = SyncRun.objects.get()
    assert run.mode == "incremental"
    assert f"Incremental of prod-eu queued (run #{run.pk})." in response.content.decode()


def test_repeated_sync_now_reuses_the_active_run(
    staff_client: Client,
    registry_source,  # type: ignore[no-untyped-def]
    task_delay: mock.MagicMock,
) -> None:
    for _ in range(3):
        staff_client.post(_run_url(registry_source), {"mode": "incremental"}, headers={"HX-Request": "true"})
    assert SyncRun.objects.count() == 1


def test_invalid_mode_is_rejected(staff_client: Client, registry_source, task_delay: mock.MagicMock) -> None:  # type: ignore[no-untyped-def]
    response = staff_client.post(_run_url(registry_source), {"mode": "event"})
    assert response.status_code == 400
    assert not SyncRun.objects.exists()


def test_disabled_source_is_not_synced(staff_client: Client, task_delay: mock.MagicMock) -> None:
    source = RegistrySourceFactory(name="paused", enabled=False)
    response = staff_client.post(_run_url(source), {"mode": "incremental"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "paused is disabled" in response.content.decode()
    assert not SyncRun.objects.exists()


def test_unknown_source_is_404(staff_client: Client) -> None:
    response = staff_client.post(reverse("registry:sync_run", args=["nope"]), {"mode": "incremental"})
    assert response.status_code == 404


def test_non_staff_cannot_sync(reviewer_client: Client, registry_source, task_delay: mock.MagicMock) -> None:  # type: ignore[no-untyped-def]
    response = reviewer_client.post(_run_url(registry_source), {"mode": "incremental"})
    assert response.status_code == 403
    assert not SyncRun.objects.exists()
    task_delay.assert_not_called()


def test_get_on_sync_run_is_405(staff_client: Client, registry_source) -> None:  # type: ignore[no-untyped-def]
    assert staff_client.get(_run_url(registry_source)).status_code == 405


def test_sync_run_requires_csrf_token(registry_source, task_delay: mock.MagicMock) -> None:  # type: ignore[no-untyped-def]
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(username="csrf-staff", is_staff=True))

    response = client.post(_run_url(registry_source), {"mode": "incremental"})

    assert response.status_code == 403
    assert not SyncRun.objects.exists()

    # With the token (as htmx sends it from <body hx-headers>) the same request goes through.
    page = client.get(STATUS_URL)
    token = page.context["csrf_token"]
    ok = client.post(
        _run_url(registry_source),
        {"mode": "incremental"},
        headers={"X-CSRFToken": str(token), "HX-Request": "true"},
    )
    assert ok.status_code == 200
    assert SyncRun.objects.count() == 1


@pytest.mark.parametrize("status", [SyncRun.Status.QUEUED, SyncRun.Status.RUNNING])
def test_poll_keeps_polling_while_active(reviewer_client: Client, registry_source, status: str) -> None:  # type: ignore[no-untyped-def]
    run = SyncRunFactory(source=registry_source, status=status, progress="Listed 120 packages", finished_at=None)
    url = reverse("registry:sync_run_status", args=[run.pk])

    response = reviewer_client.get(url, headers={"HX-Request": "true"})

    assert response.status_code == 200
    html = response.content.decode()
    assert f'hx-get="{url}"' in html and 'hx-trigger="every 2s"' in html
    assert "<html" not in html
    if status == SyncRun.Status.RUNNING:
        assert "Listed 120 packages" in html


@pytest.mark.parametrize("status", [SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL, SyncRun.Status.FAILED])
def test_poll_stops_with_286_when_finished(reviewer_client: Client, registry_source, status: str) -> None:  # type: ignore[no-untyped-def]
    run = SyncRunFactory(source=registry_source, status=status, counts={"packages_updated": 4})

    response = reviewer_client.get(reverse("registry:sync_run_status", args=[run.pk]), headers={"HX-Request": "true"})

    assert response.status_code == 286
    html = response.content.decode()
    assert "hx-trigger" not in html
    assert "Packages updated" in html and ">4<" in html
