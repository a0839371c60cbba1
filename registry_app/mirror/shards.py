"""A full reconciliation, sharded per model package group.

The first step (``full_start``) lists the groups (a failed group listing fails the run and marks
nothing), marks vanished groups and their packages deleted, and splits the remaining groups into shards
of ``SYNC_SHARD_GROUPS``. Each shard (``shard_execute``) reconciles its groups' packages (Search filtered
by group, or List + Describe), marking deleted only packages missing from a listing of their own group
that completed. Shards run as separate Celery tasks (``fan_out``, from the sync task) on any number of
workers, or one after the other in this process (the management command, tests); the code is the same.

The run's ``counts`` keep the bookkeeping: the number of shards and the ids of those done, updated under
a row lock (``select_for_update``; SQLite's IMMEDIATE transactions serialise the same way), so exactly
one shard sees itself last and finalises (``finalise_run``: cards and endpoints, status, lease release).
No Celery chord: the project keeps no results.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from registry_app.aws.sagemaker import RegistryClient
from registry_app.aws.session import CallStats, SourceConfig
from registry_app.mirror import mapping as sync
from registry_app.mirror.changes import advance_watermark
from registry_app.mirror.context import MAX_ERRORS_KEPT
from registry_app.mirror.endpoints import cards_and_endpoints
from registry_app.mirror.leases import hold_lock, release_lock
from registry_app.mirror.reconcile import RegistrySync
from registry_app.mirror.runs import run_elapsed, run_finish
from registry_app.models import RegistrySource, SyncRun

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _StatsMark:
    """Where a (possibly shared) client's counters stood when a step began."""

    calls: dict[str, int]
    throttles: dict[str, int]
    seconds: float

    @classmethod
    def of(cls, stats: CallStats) -> _StatsMark:
        return cls(stats.as_dict(), dict(stats.throttles), stats.seconds)

    def since(self, stats: CallStats) -> tuple[dict[str, int], dict[str, int], float]:
        calls = Counter(stats.as_dict())
        calls.subtract(self.calls)
        throttles = Counter(dict(stats.throttles))
        throttles.subtract(self.throttles)
        return (
            {op: n for op, n in calls.items() if n > 0},
            {op: n for op, n in sorted(throttles.items()) if n > 0},
            stats.seconds - self.seconds,
        )


def _accumulate(run: SyncRun, syncer: RegistrySync, stats: CallStats, mark: _StatsMark) -> None:
    """Add one step's counts, errors and AWS calls to ``run`` (locked by the caller)."""
    calls, throttles, seconds = mark.since(stats)
    counts = dict(syncer.counts)
    if throttles:
        counts["throttled_attempts"] = sum(throttles.values())
        counts.update({f"throttled_{op}": n for op, n in throttles.items()})  # for /metrics
    run.counts = sync.merge_counts(run.counts or {}, counts)
    run.aws_calls = sync.merge_calls(run.aws_calls or {}, calls)
    run.aws_seconds = round((run.aws_seconds or 0.0) + seconds, 3)
    run.errors = [*(run.errors or []), *syncer.errors][:MAX_ERRORS_KEPT]


def full_start(run: SyncRun, token: str, *, client: RegistryClient | None = None, fan_out: bool = False) -> SyncRun:
    """First step of a full reconciliation (the run is claimed and holds the source lease).

    Lists the groups, marks the vanished ones (and their packages) deleted, records the shard
    plan on the run and then sends the shards (``fan_out``, after commit) or runs them here.
    """
    source = run.source
    client = client or RegistryClient(SourceConfig.from_source(source), CallStats())
    mark = _StatsMark.of(client.stats)
    syncer = RegistrySync(source, run, client, lock_token=token)
    try:
        group_ids = syncer.full_plan()
    except Exception as exc:  # noqa: BLE001 - no complete group listing: fail, mark nothing
        log.exception("full sync of %s failed listing groups", source.name)
        release_lock(source, token)
        _accumulate(run, syncer, client.stats, mark)
        run.counts = sync.final_counts(run.counts)
        run.duration_s = run_elapsed(run)
        run_finish(run, SyncRun.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
        return run
    plan = sync.plan_shards(group_ids, settings.SYNC_SHARD_GROUPS)
    syncer.count("groups", len(group_ids))
    with transaction.atomic():
        locked = SyncRun.objects.select_for_update().get(pk=run.pk)
        _accumulate(locked, syncer, client.stats, mark)
        locked.counts.update({"shards": len(plan), sync.SHARDS_DONE: 0, sync.SHARD_IDS_DONE: []})
        locked.progress = f"Reconciling {len(group_ids)} groups in {len(plan)} shards"
        locked.save(update_fields=["counts", "aws_calls", "aws_seconds", "errors", "progress"])
        if fan_out and plan:
            transaction.on_commit(lambda: _enqueue_shards(run.pk, plan, token))
    if not plan:
        return finalise_run(run.pk, token, client=client)
    if not fan_out:
        for index, shard_groups in enumerate(plan):
            shard_execute(run.pk, index, shard_groups, token, client=client)
    return SyncRun.objects.select_related("source").get(pk=run.pk)


def _enqueue_shards(run_id: int, plan: list[list[int]], token: str) -> None:
    """Send one task per shard; if the broker is down, the run fails and frees the lease."""
    from registry_app.tasks import sync_shard_task

    try:
        for index, group_ids in enumerate(plan):
            sync_shard_task.delay(run_id, index, group_ids, token)
    except Exception as exc:  # noqa: BLE001 - any broker/transport failure
        log.error("could not enqueue the shards of sync run %s: %s", run_id, exc)
        run = SyncRun.objects.select_related("source").get(pk=run_id)
        release_lock(run.source, token)
        SyncRun.objects.filter(pk=run_id, status=SyncRun.Status.RUNNING).update(
            status=SyncRun.Status.FAILED,
            finished_at=timezone.now(),
            progress="",
            error=f"Could not reach the task broker to send the shards: {exc}"[:4000],
        )


def shard_execute(
    run_id: int, shard: int, group_ids: list[int], token: str, *, client: RegistryClient | None = None
) -> SyncRun | None:
    """Reconcile one shard's groups and record it done; the shard that completes the set finalises.

    Idempotent: a shard already recorded (a redelivered task) or a run no longer running is a
    no-op. Running it twice concurrently does the (change-detected) work twice and counts it once.
    """
    run = SyncRun.objects.select_related("source").filter(pk=run_id).first()
    if run is None or run.status != SyncRun.Status.RUNNING or shard in (run.counts or {}).get(sync.SHARD_IDS_DONE, []):
        return run
    source = run.source
    client = client or RegistryClient(SourceConfig.from_source(source), CallStats())
    mark = _StatsMark.of(client.stats)
    total = int((run.counts or {}).get("shards") or 0)
    syncer = RegistrySync(source, run, client, lock_token=token, label=f"Shard {shard + 1}/{total}: ")
    if hold_lock(source, token):
        syncer.reconcile_groups(group_ids)
    else:
        syncer.count("groups_failed", len(group_ids))
        syncer.error(f"shard {shard + 1}", "another sync holds the source's lease (this shard waited too long)")
    with transaction.atomic():
        locked = SyncRun.objects.select_for_update().get(pk=run_id)
        done = list((locked.counts or {}).get(sync.SHARD_IDS_DONE, []))
        if locked.status != SyncRun.Status.RUNNING or shard in done:
            return locked  # a duplicate delivery recorded this shard first
        _accumulate(locked, syncer, client.stats, mark)
        done.append(shard)
        locked.counts[sync.SHARD_IDS_DONE] = done
        locked.counts[sync.SHARDS_DONE] = len(done)
        locked.save(update_fields=["counts", "aws_calls", "aws_seconds", "errors"])
        last = len(done) >= int(locked.counts.get("shards") or 0)
    if last:
        return finalise_run(run_id, token, client=client)
    return locked


def finalise_run(run_id: int, token: str, *, client: RegistryClient | None = None) -> SyncRun:
    """Last step of a full reconciliation: cards and endpoints, the run's status, the lease freed."""
    run = SyncRun.objects.select_related("source").get(pk=run_id)
    source = run.source
    client = client or RegistryClient(SourceConfig.from_source(source), CallStats())
    mark = _StatsMark.of(client.stats)
    syncer = RegistrySync(source, run, client, lock_token=token, label="Cards and endpoints: ")
    error = ""
    try:
        cards_and_endpoints(syncer)
    except Exception as exc:  # noqa: BLE001 - recorded on the run
        log.exception("full sync of %s failed on cards and endpoints", source.name)
        error = f"{type(exc).__name__}: {exc}"
    finally:
        release_lock(source, token)
    with transaction.atomic():
        run = SyncRun.objects.select_for_update().select_related("source").get(pk=run_id)
        _accumulate(run, syncer, client.stats, mark)
        status, message = sync.sharded_outcome(run.counts, has_errors=bool(run.errors), final_error=error)
        run.counts = sync.final_counts(run.counts)
        run.duration_s = run_elapsed(run)
        run_finish(run, status, error=message)
        _record_completion(run, status)
    return run


def _record_completion(run: SyncRun, status: str) -> None:
    """What a finished full reconciliation establishes for its source.

    - The first complete sync: every pass ran (a partial run had per-package or per-report errors,
      which later passes retry), so later runs keep their own mode.
    - The Search watermark: every package record was applied as of the run's start, so content changes
      before it need no more searching; only when no group and no package was left unread.
    """
    if status not in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL):
        return
    source = run.source
    if source.first_synced_at is None:
        RegistrySource.objects.filter(pk=source.pk, first_synced_at__isnull=True).update(first_synced_at=timezone.now())
    counts = run.counts or {}
    if run.started_at and not counts.get("groups_failed") and not counts.get("packages_unapplied"):
        advance_watermark(source, run.started_at)
