"""Scale-out with real workers on the real broker (Redis in CI, the embedded broker locally).

- A full reconciliation fans out one task per group on the sync queue; a worker runs them and
  the last one finishes the run.
- A push is delivered by the push-queue worker while the only sync-queue worker is stuck inside
  a sync's AWS call: queues, not luck, keep pushes from waiting behind syncs.
- Syncs of two sources run at the same time on two worker threads.

Two workers with different queues need two Celery app objects: the queues a worker consumes are
selected on its app (``app.amqp.queues``), so two workers of one app would share one selection.
The second app is configured exactly like ``governance.celery.app``, from the same settings.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from celery.signals import task_prerun
from django.conf import settings
from django.contrib.auth.models import Group

from governance.celery import app as governance_app
from registry_app.aws.sagemaker import RegistryClient
from registry_app.mirror.execute import sync_source
from registry_app.mirror.runs import request_sync
from registry_app.models import ModelPackage, PushOutbox, RegistrySource, SyncRun
from registry_app.review.signoffs import signoff_create
from tests import aws_helpers as h
from tests.broker import purge_queues
from tests.factories import UserFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

HANG_GUARD = 60.0  # seconds; only ever reached when the behaviour under test is broken


def wait_until(what: str, check: Callable[[], bool], timeout: float = HANG_GUARD) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {what}")


def finished(run: SyncRun) -> SyncRun:
    def done() -> bool:
        run.refresh_from_db()
        return not run.is_active

    wait_until(f"sync run {run.pk} to finish", done)
    return run


@pytest.fixture(autouse=True)
def fresh_moto(moto_server: str) -> Iterator[str]:
    """moto keeps its state per process, across servers: start and leave these tests clean."""

    def reset() -> None:
        urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).close()

    reset()
    yield moto_server
    reset()


@pytest.fixture
def executed() -> Iterator[list[tuple[str, str]]]:
    """(task name, queue it was delivered from) of every task a worker starts."""
    seen: list[tuple[str, str]] = []

    def record(sender: Any = None, task: Any = None, **_: Any) -> None:
        info = task.request.delivery_info or {}
        seen.append((task.name, str(info.get("routing_key") or "")))

    task_prerun.connect(record, weak=False)
    try:
        yield seen
    finally:
        task_prerun.disconnect(record)


@contextmanager
def worker(name: str, kinds: list[str], *, concurrency: int = 1, own_app: bool = False) -> Iterator[Any]:
    """A worker consuming only the queues of ``kinds`` ("default" for the default queue)."""
    app = governance_app
    if own_app:
        app = Celery("governance")
        app.config_from_object("django.conf:settings", namespace="CELERY")
    queues = [
        governance_app.conf.task_default_queue if kind == "default" else settings.TASK_QUEUE_NAMES[kind]
        for kind in kinds
    ]
    purge_queues(app, queues)
    try:
        with start_worker(
            app,
            pool="threads",
            concurrency=concurrency,
            perform_ping_check=False,
            shutdown_timeout=HANG_GUARD,
            queues=queues,
            hostname=f"{name}@test",
        ) as started:
            yield started
    finally:
        # start_worker makes its app the current and default one; give that back.
        governance_app.set_current()
        governance_app.set_default()


def consumed(started: Any) -> set[str]:
    """The queues a running worker's task consumer reads."""
    return {queue.name for queue in started.consumer.task_consumer.queues}


def test_sharded_full_sync_on_a_worker(moto_server, transactional_db, settings, executed) -> None:  # type: ignore[no-untyped-def]
    settings.SYNC_SHARD_GROUPS = 1
    sm, s3 = h.clients()
    h.make_bucket(s3)
    report = h.put_json(s3, "credit/1/evaluation.json", h.BINARY_REPORT)
    groups = ["credit-risk", "house-price", "churn", "fraud"]
    for group in groups:
        h.create_group(sm, group)
        for _ in range(2):
            h.create_package(sm, group, report_uri=report)
    source = RegistrySource.objects.create(name="it-shards", region=h.REGION)

    with worker("sync", ["sync"], concurrency=2):
        run = finished(request_sync(source, mode=SyncRun.Mode.FULL, trigger=SyncRun.Trigger.BEAT))

    assert run.status == SyncRun.Status.SUCCEEDED, (run.error, run.errors)
    assert ModelPackage.objects.filter(source=source, deleted_at__isnull=True).count() == 8
    assert run.counts["shards"] == 4 and run.counts["groups_reconciled"] == 4
    assert run.aws_calls["Search"] == 4  # one per group, none twice
    assert "DescribeModelPackage" not in run.aws_calls
    names = [name for name, _ in executed]
    assert names.count("registry_app.tasks.sync_registry") == 1
    assert names.count("registry_app.tasks.sync_shard") == 4  # one task per group
    assert {queue for _, queue in executed} == {settings.TASK_QUEUE_NAMES["sync"]}
    assert RegistrySource.objects.get(pk=source.pk).sync_locked_until is None


def test_push_is_not_blocked_by_a_long_sync(moto_server, transactional_db, monkeypatch, executed) -> None:  # type: ignore[no-untyped-def]
    """One worker for the sync queue (concurrency 1), one for push + email + default.

    The sync task blocks inside an AWS call until the push has been delivered. Were the push
    routed to the sync queue, it would wait behind the blocked sync (only one sync slot) and the
    test would time out; were the sync routed to the push worker's queues, that worker's only
    slot would be the one blocked. Only separate queues let it pass.
    """
    sm, s3 = h.clients()
    h.make_bucket(s3)
    report = h.put_json(s3, "credit/1/evaluation.json", h.BINARY_REPORT)
    h.create_group(sm, "credit-risk")
    arn = h.create_package(sm, "credit-risk", report_uri=report)
    source = RegistrySource.objects.create(name="it-push", region=h.REGION)
    assert sync_source(source, mode=SyncRun.Mode.FULL).status == SyncRun.Status.SUCCEEDED
    package = ModelPackage.objects.get(arn=arn)
    reviewer = UserFactory(username="fay")
    reviewer.groups.add(Group.objects.get_or_create(name="fairness")[0])

    in_sync = threading.Event()
    release = threading.Event()
    original = RegistryClient.iter_group_pages

    def slow_listing(self: RegistryClient, **kwargs: Any) -> Iterator[list[dict]]:
        in_sync.set()
        release.wait(HANG_GUARD)  # the "long sync": stuck in ListModelPackageGroups
        yield from original(self, **kwargs)

    monkeypatch.setattr(RegistryClient, "iter_group_pages", slow_listing)

    with worker("sync", ["sync"]) as sync_worker, worker("push", ["push", "email", "default"], own_app=True) as other:
        assert consumed(sync_worker) == {settings.TASK_QUEUE_NAMES["sync"]}
        assert settings.TASK_QUEUE_NAMES["push"] in consumed(other)
        assert settings.TASK_QUEUE_NAMES["sync"] not in consumed(other)
        try:
            run = request_sync(source, mode=SyncRun.Mode.FULL, trigger=SyncRun.Trigger.BEAT)
            assert in_sync.wait(HANG_GUARD), "the sync task never started"
            # The sync worker's only slot is now busy; sign off, which queues a push.
            result = signoff_create(
                user=reviewer, package_id=package.pk, role="fairness", decision="approve", comment=""
            )
            [push] = result.pushes

            def sent() -> bool:
                push.refresh_from_db()
                return push.state == PushOutbox.State.SENT

            wait_until("the push to be delivered while the sync is stuck", sent)
            assert not release.is_set()
            run.refresh_from_db()
            assert run.status == SyncRun.Status.RUNNING  # the sync really was still in progress
        finally:
            release.set()
        run = finished(run)

    assert run.status == SyncRun.Status.SUCCEEDED, (run.error, run.errors)
    described = sm.describe_model_package(ModelPackageName=arn)
    assert described["CustomerMetadataProperties"]["FairnessApproved"] == "true"
    # Each task came from its own queue, which only one of the two workers consumes.
    where = dict(executed)
    assert where["registry_app.tasks.sync_registry"] == settings.TASK_QUEUE_NAMES["sync"]
    assert where["registry_app.tasks.push"] == settings.TASK_QUEUE_NAMES["push"]


def test_two_sources_sync_at_the_same_time(moto_server, transactional_db, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Each source is its own task, so two workers (here two threads) sync two sources at once:
    both syncs must be inside ListModelPackages together for the barrier to open."""
    sources = []
    for region in ("eu-west-1", "us-east-1"):
        sm, _ = h.clients(region)
        h.create_group(sm, "credit-risk")
        h.create_package(sm, "credit-risk")
        sources.append(RegistrySource.objects.create(name=f"it-{region}", region=region))
    barrier = threading.Barrier(2, timeout=HANG_GUARD)
    original = RegistryClient.iter_package_summary_pages

    def meet(self: RegistryClient, **kwargs: Any) -> Iterator[list[dict]]:
        barrier.wait()  # raises BrokenBarrierError (the run fails) unless both syncs get here
        yield from original(self, **kwargs)

    monkeypatch.setattr(RegistryClient, "iter_package_summary_pages", meet)
    with worker("sync", ["sync"], concurrency=2):
        runs = [request_sync(source, mode=SyncRun.Mode.INCREMENTAL, trigger=SyncRun.Trigger.BEAT) for source in sources]
        runs = [finished(run) for run in runs]
    assert [run.status for run in runs] == [SyncRun.Status.SUCCEEDED] * 2, [(r.error, r.errors) for r in runs]
    assert ModelPackage.objects.count() == 2
