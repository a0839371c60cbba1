"""End to end: a real Celery worker on the real broker syncs from a moto server on loopback."""

from __future__ import annotations

import time

import pytest
from django.conf import settings

from registry_app.mirror.runs import request_sync
from registry_app.models import ModelPackage, RegistrySource, SyncRun
from tests import aws_helpers as h

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def wait_for(run: SyncRun, timeout: float = 60.0) -> SyncRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if not run.is_active:
            return run
        time.sleep(0.2)
    raise AssertionError(f"sync run {run.pk} still {run.status} after {timeout}s")


def test_worker_syncs_and_sees_registry_approval(moto_server, celery_worker_live) -> None:  # type: ignore[no-untyped-def]
    if settings.REDIS_URL:
        assert settings.CELERY_BROKER_URL.startswith("redis://")
    sm, s3 = h.clients()
    h.make_bucket(s3)
    report = h.put_json(s3, "credit/1/evaluation.json", h.BINARY_REPORT)
    h.create_group(sm, "credit-risk")
    arns = [h.create_package(sm, "credit-risk", report_uri=report) for _ in range(3)]
    source = RegistrySource.objects.create(name="it", region=h.REGION)

    run = wait_for(request_sync(source, mode=SyncRun.Mode.FULL, trigger=SyncRun.Trigger.MANUAL))
    assert run.status == SyncRun.Status.SUCCEEDED, (run.error, run.errors)
    assert run.task_id  # executed by the worker, not inline
    assert ModelPackage.objects.filter(source=source).count() == 3

    # An approval made directly in the registry (Studio, CLI, a pipeline) ...
    h.set_status(sm, arns[1], "Approved", "approved in Studio by alice")
    run = wait_for(request_sync(source, mode=SyncRun.Mode.INCREMENTAL, trigger=SyncRun.Trigger.BEAT))
    # ... shows as Approved after the next incremental sync.
    assert run.status == SyncRun.Status.SUCCEEDED
    # Two reads: Search from the watermark returns the changed package's full record (so no Describe),
    # and the listing finds nothing else different (docs/architecture.md, "How the mirror syncs").
    assert run.aws_calls == {"Search": 1, "ListModelPackages": 1}
    assert ModelPackage.objects.get(arn=arns[1]).approval_status == "Approved"
