"""Running a sync: claim a queued ``SyncRun``, take the source's lease, run its mode, record the outcome.

Entry points:
- ``execute_run(run_id)``: claim a queued SyncRun, take the source lock, run it (the sync task).
- ``sync_source(source, mode, trigger)``: create a run and execute it now (management command, tests).

Modes: incremental (``reconcile``), cards and endpoints (``endpoints``), events (``events``), and the
full reconciliation, which ``shards`` runs in steps under the same lease. A source's first sync is a full
reconciliation whatever mode was asked, so it is complete (packages, reports, cards, endpoints) at once.
"""

from __future__ import annotations

import logging
import time

from django.utils import timezone

from registry_app.aws.sagemaker import RegistryClient
from registry_app.aws.session import CallStats, SourceConfig
from registry_app.mirror.context import MAX_ERRORS_KEPT
from registry_app.mirror.endpoints import cards_and_endpoints
from registry_app.mirror.events import consume_events
from registry_app.mirror.leases import acquire_lock, release_lock
from registry_app.mirror.reconcile import RegistrySync
from registry_app.mirror.runs import run_finish
from registry_app.mirror.shards import full_start
from registry_app.models import RegistrySource, SyncRun

log = logging.getLogger(__name__)


def sync_source(
    source: RegistrySource, *, mode: str = SyncRun.Mode.INCREMENTAL, trigger: str = SyncRun.Trigger.COMMAND
) -> SyncRun:
    """Create a run and execute it now, in this process (the management command, tests)."""
    run = SyncRun.objects.create(source=source, mode=mode, trigger=trigger)
    return execute_run(run.pk)


def execute_run(
    run_id: int, *, client: RegistryClient | None = None, task_id: str = "", fan_out: bool = False
) -> SyncRun:
    """Run a queued SyncRun once. A second delivery of the same task finds it claimed and returns.

    ``fan_out``: a full reconciliation sends its shards as Celery tasks (after commit) and
    returns while they run; otherwise they run here, one after the other.
    """
    claimed = SyncRun.objects.filter(pk=run_id, status=SyncRun.Status.QUEUED).update(
        status=SyncRun.Status.RUNNING, started_at=timezone.now(), task_id=task_id[:64]
    )
    run = SyncRun.objects.select_related("source").get(pk=run_id)
    if not claimed:
        return run
    source = run.source
    token = acquire_lock(source)
    if token is None:
        run_finish(run, SyncRun.Status.SKIPPED, error="another sync of this source is running")
        return run
    if source.first_synced_at is None and run.mode != SyncRun.Mode.FULL:
        # Until one sync completed, the mirror lacks what only the other passes bring (standalone cards,
        # endpoints, the reports a listing never fetches): the first sync does them all.
        run.mode = SyncRun.Mode.FULL
        run.counts = {**(run.counts or {}), "first_sync": 1}
        run.save(update_fields=["mode", "counts"])
    if run.mode == SyncRun.Mode.FULL:
        return full_start(run, token, client=client, fan_out=fan_out)
    started = time.perf_counter()
    stats = client.stats if client is not None else CallStats()
    client = client or RegistryClient(SourceConfig.from_source(source), stats)
    syncer = RegistrySync(source, run, client, lock_token=token)
    try:
        if run.mode == SyncRun.Mode.ENDPOINTS:
            cards_and_endpoints(syncer)
        elif run.mode == SyncRun.Mode.EVENT:
            consume_events(syncer)
        else:
            syncer.incremental()
        status = SyncRun.Status.PARTIAL if syncer.errors else SyncRun.Status.SUCCEEDED
        error = ""
    except Exception as exc:  # noqa: BLE001 - recorded on the run, then re-raised for task retry logic
        log.exception("sync of %s failed", source.name)
        status, error = SyncRun.Status.FAILED, f"{type(exc).__name__}: {exc}"
    finally:
        release_lock(source, token)
    run.duration_s = round(time.perf_counter() - started, 3)
    run.aws_seconds = round(stats.seconds, 3)
    run.aws_calls = stats.as_dict()
    run.counts = {k: v for k, v in sorted(syncer.counts.items()) if v}
    if stats.throttles:
        run.counts["throttled_attempts"] = sum(stats.throttles.values())
        run.counts.update({f"throttled_{op}": n for op, n in sorted(stats.throttles.items())})  # for /metrics
    run.errors = syncer.errors[:MAX_ERRORS_KEPT]
    run_finish(run, status, error=error)
    # No task-level retry: botocore already retried throttling/5xx, and the next scheduled
    # run (a minute later) picks up whatever this one could not finish.
    return run
