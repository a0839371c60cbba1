"""Sync orchestration: AWS adapter → pure mapping (registry_app.mirror.mapping) → database.

Transactions wrap database writes only. AWS calls (describe, S3 GETs) run in a thread
pool; every database write happens on the calling thread, one small transaction per
package, so a failure in one package is recorded and the rest continue.

Entry points:
- ``execute_run(run_id)``: claim a queued SyncRun, take the source lock, run it.
- ``sync_source(source, mode, trigger)``: create a run and execute it now (management command).
- ``shard_execute(run_id, shard, group_ids, lock_token)``: one shard of a full reconciliation.

A full reconciliation is sharded per model package group. The first step (``full_start``)
lists the groups (a failed group listing fails the run and marks nothing), marks vanished
groups and their packages deleted, and splits the remaining groups into shards of
``SYNC_SHARD_GROUPS``. Each shard reconciles its groups' packages (Search filtered by group,
or List + Describe), marking deleted only packages missing from a listing of their own group
that completed. Shards run as separate Celery tasks (``fan_out``, from the sync task) on any
number of workers, or one after the other in this process (the management command, tests);
the code is the same. The run's ``counts`` keep the bookkeeping: the number of shards and the
ids of those done, updated under a row lock (``select_for_update``; SQLite's IMMEDIATE
transactions serialise the same way), so exactly one shard sees itself last and finalises
(cards and endpoints, status, lease release). No Celery chord: the project keeps no results.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from registry_app.aws.errors import AccessDeniedError, AwsError, NotFoundError, ValidationError
from registry_app.aws.sagemaker import RegistryClient, ReportTooLarge, UnsupportedUri
from registry_app.aws.session import CallStats, SourceConfig
from registry_app.mirror import mapping as sync
from registry_app.models import (
    Endpoint,
    EndpointVariant,
    EvaluationReport,
    Metric,
    ModelCard,
    ModelPackage,
    ModelPackageGroup,
    PackageObservation,
    RegistrySource,
    SyncRun,
)
from registry_app.review.on_sync import (  # governance: stale sign-offs, reviews, the stored review state
    card_link_observed,
    card_observed,
    card_stored,
    group_observed,
    package_observed,
    package_reports_observed,
    packages_vanished,
)

log = logging.getLogger(__name__)
MAX_ERRORS_KEPT = 200
PAGE = 100


# ---------------------------------------------------------------------------------------
# Run bookkeeping and the per-source lock
# ---------------------------------------------------------------------------------------
def acquire_lock(source: RegistrySource) -> str | None:
    """Conditional UPDATE: succeeds for exactly one caller while the lease is free or expired."""
    token = uuid.uuid4().hex
    now = timezone.now()
    won = (
        RegistrySource.objects.filter(pk=source.pk)
        .filter(Q(sync_locked_until__isnull=True) | Q(sync_locked_until__lt=now))
        .update(
            sync_lock_token=token,
            sync_locked_until=now + timezone.timedelta(seconds=settings.SYNC_LOCK_SECONDS),
        )
    )
    return token if won else None


def renew_lock(source: RegistrySource, token: str) -> None:
    RegistrySource.objects.filter(pk=source.pk, sync_lock_token=token).update(
        sync_locked_until=timezone.now() + timezone.timedelta(seconds=settings.SYNC_LOCK_SECONDS)
    )


def hold_lock(source: RegistrySource, token: str) -> bool:
    """Renew the lease for its holder, or take it back if it lapsed and nobody else holds it.

    A shard of a full reconciliation runs under the lease its run took; a shard that waited in
    the queue longer than the lease finds another sync holding it and must not run.
    """
    now = timezone.now()
    return bool(
        RegistrySource.objects.filter(pk=source.pk)
        .filter(Q(sync_lock_token=token) | Q(sync_locked_until__isnull=True) | Q(sync_locked_until__lt=now))
        .update(
            sync_lock_token=token,
            sync_locked_until=now + timezone.timedelta(seconds=settings.SYNC_LOCK_SECONDS),
        )
    )


def release_lock(source: RegistrySource, token: str) -> None:
    RegistrySource.objects.filter(pk=source.pk, sync_lock_token=token).update(
        sync_lock_token="", sync_locked_until=None
    )


def sync_source(
    source: RegistrySource, *, mode: str = SyncRun.Mode.INCREMENTAL, trigger: str = SyncRun.Trigger.COMMAND
) -> SyncRun:
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
        _finish(run, SyncRun.Status.SKIPPED, error="another sync of this source is running")
        return run
    if run.mode == SyncRun.Mode.FULL:
        return full_start(run, token, client=client, fan_out=fan_out)
    started = time.perf_counter()
    stats = client.stats if client is not None else CallStats()
    client = client or RegistryClient(SourceConfig.from_source(source), stats)
    syncer = RegistrySync(source, run, client, lock_token=token)
    try:
        if run.mode == SyncRun.Mode.ENDPOINTS:
            syncer.cards_and_endpoints()
        elif run.mode == SyncRun.Mode.EVENT:
            syncer.consume_events()
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
    _finish(run, status, error=error)
    # No task-level retry: botocore already retried throttling/5xx, and the next scheduled
    # run (a minute later) picks up whatever this one could not finish.
    return run


# ---------------------------------------------------------------------------------------
# Full reconciliation, sharded per group
# ---------------------------------------------------------------------------------------
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
        run.duration_s = _elapsed(run)
        _finish(run, SyncRun.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
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
        syncer.cards_and_endpoints()
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
        run.duration_s = _elapsed(run)
        _finish(run, status, error=message)
    return run


def _elapsed(run: SyncRun) -> float | None:
    return round((timezone.now() - run.started_at).total_seconds(), 3) if run.started_at else None


def _finish(run: SyncRun, status: str, *, error: str = "") -> None:
    run.status = status
    run.error = error[:4000]
    run.finished_at = timezone.now()
    run.progress = ""
    run.save(
        update_fields=[
            "status",
            "error",
            "finished_at",
            "progress",
            "duration_s",
            "aws_seconds",
            "aws_calls",
            "counts",
            "errors",
        ]
    )


# ---------------------------------------------------------------------------------------
# What worker threads return
# ---------------------------------------------------------------------------------------
@dataclass
class FetchedReport:
    ref: sync.MetricsSourceRef
    status: str
    sha256: str = ""
    size: int | None = None
    error: str = ""
    parsed: Any = None  # registry_app.mirror.reports.ParsedReport
    document: Any = None


@dataclass
class Bundle:
    arn: str
    record: dict[str, Any] | None = None
    reports: list[FetchedReport] = field(default_factory=list)
    error: str = ""


@dataclass(frozen=True)
class KnownReport:
    s3_uri: str
    content_digest: str
    status: str


def fetch_report(client: RegistryClient, ref: sync.MetricsSourceRef) -> FetchedReport:
    """GET and parse one report. Never raises: every failure becomes a status + message."""
    from registry_app.mirror import reports

    if not ref.is_json:
        return FetchedReport(ref, EvaluationReport.Status.SKIPPED, error=f"content type {ref.content_type!r}")
    try:
        obj = client.get_object(
            ref.s3_uri, max_bytes=settings.REPORT_MAX_BYTES, timeout_s=settings.REPORT_FETCH_SECONDS
        )
    except ReportTooLarge as exc:
        return FetchedReport(ref, EvaluationReport.Status.TOO_LARGE, error=str(exc))
    except UnsupportedUri as exc:
        return FetchedReport(ref, EvaluationReport.Status.FETCH_ERROR, error=str(exc))
    except AwsError as exc:
        return FetchedReport(ref, EvaluationReport.Status.FETCH_ERROR, error=str(exc))
    result = FetchedReport(ref, EvaluationReport.Status.OK, sha256=obj.sha256, size=obj.size)
    if ref.content_digest:
        verdict = reports.verify_content_digest(obj.body, ref.content_digest)
        if verdict is False:
            result.status = EvaluationReport.Status.DIGEST_MISMATCH
            result.error = f"ContentDigest {ref.content_digest} does not match the fetched object (sha256 {obj.sha256})"
            return result
    try:
        result.parsed = reports.parse_report(obj.body)
        result.document = result.parsed.document
    except reports.ReportParseError as exc:
        result.status = EvaluationReport.Status.PARSE_ERROR
        result.error = str(exc)
    return result


# ---------------------------------------------------------------------------------------
# The sync itself
# ---------------------------------------------------------------------------------------
class RegistrySync:
    def __init__(
        self,
        source: RegistrySource,
        run: SyncRun | None,
        client: RegistryClient,
        *,
        lock_token: str = "",
        label: str = "",
    ) -> None:
        self.source = source
        self.run = run
        self.client = client
        self.lock_token = lock_token
        # Set for one step of a sharded full reconciliation: progress names the step, and the
        # run's AWS call counts are merged at the end of the step instead of overwritten.
        self.label = label
        self.counts: dict[str, int] = {}
        self.errors: list[dict[str, str]] = []
        self._groups: dict[str, ModelPackageGroup] = {}
        self._last_progress = 0.0
        self._search_unavailable = False

    # -- helpers -------------------------------------------------------------------------
    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def error(self, subject: str, message: str) -> None:
        self.count("errors")
        log.warning("sync %s: %s: %s", self.source.name, subject, message)
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append({"subject": subject[:300], "message": message[:1000]})

    def progress(self, text: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.run is not None and (force or now - self._last_progress > 2.0):
            self._last_progress = now
            if self.label:
                SyncRun.objects.filter(pk=self.run.pk).update(progress=f"{self.label}{text}"[:200])
            else:
                SyncRun.objects.filter(pk=self.run.pk).update(
                    progress=text[:200], aws_calls=self.client.stats.as_dict()
                )
            if self.lock_token:
                renew_lock(self.source, self.lock_token)

    def ensure_account(self) -> None:
        if not self.source.account_id:
            self.source.account_id = self.client.account_id()
            RegistrySource.objects.filter(pk=self.source.pk).update(account_id=self.source.account_id)

    def load_groups(self) -> None:
        self._groups = {g.name: g for g in ModelPackageGroup.objects.filter(source=self.source)}

    # -- modes ---------------------------------------------------------------------------
    def incremental(self) -> None:
        """List every versioned package (⌈N/100⌉ calls); describe only what is new or changed."""
        self.ensure_account()
        self.load_groups()
        mirror = self._mirror_index()
        to_describe: list[str] = []
        seen: set[str] = set()
        listed = 0
        for summary in self._all_summaries():
            arn = summary.get("ModelPackageArn")
            if not arn:
                continue
            seen.add(arn)
            listed += 1
            row = mirror.get(arn)
            if row is None or row["deleted_at"] is not None or sync.summary_differs(row, summary):
                to_describe.append(arn)
            if listed % 500 == 0:
                self.progress(f"Listed {listed} packages")
        self.count("listed", listed)
        new_group_names = {arn_group for arn in to_describe if (arn_group := _group_of(arn)) not in self._groups}
        for name in sorted(new_group_names):
            self._describe_and_store_group(name)
        self._process(self._describe_bundles(to_describe, self._known_reports(to_describe)))
        self._mark_vanished_packages(mirror, seen)

    def full_plan(self) -> list[int]:
        """Full reconciliation, first step: the complete group listing (own and shared through
        RAM, with tags); vanished groups and their packages are marked deleted. Returns the ids
        of the groups whose packages the shards reconcile. A failed listing raises."""
        self.ensure_account()
        seen_groups, cross_account_listed = self._sync_groups()
        self.load_groups()
        self._mark_vanished_groups(seen_groups, cross_account_listed=cross_account_listed)
        return sorted(g.pk for g in self._groups.values() if g.deleted_at is None)

    def reconcile_groups(self, group_ids: Iterable[int]) -> None:
        """Full reconciliation, one shard: every package of these groups. One group's failure is
        recorded (``groups_failed``) and leaves that group untouched; the others continue."""
        self.ensure_account()
        self.load_groups()
        wanted = set(group_ids)
        for group in sorted((g for g in self._groups.values() if g.pk in wanted), key=lambda g: g.name):
            try:
                self._reconcile_group(group)
            except Exception as exc:  # noqa: BLE001 - isolated per group, recorded on the run
                log.warning("sync %s: group %s failed: %s", self.source.name, group.name, exc)
                self.count("groups_failed")
                self.error(f"group {group.name}", f"{type(exc).__name__}: {exc}")
            else:
                self.count("groups_reconciled")

    def _reconcile_group(self, group: ModelPackageGroup) -> None:
        """Search filtered by the group (100 full records a page), or List + Describe for groups
        shared from another account (Search does not return them) and where Search is denied.
        Packages missing from the group's *complete* listing are marked deleted; a listing that
        raises half-way marks nothing."""
        mirror = self._mirror_index(group=group)
        known = self._known_reports(None, group=group)
        seen: set[str] = set()
        shared = group.owner_account != self.source.account_id
        searched = False
        if not shared and not self._search_unavailable:
            try:
                self._process(self._search_bundles(known, seen, group=group.name))
                searched = True
            except (AccessDeniedError, ValidationError) as exc:
                # Search denied (or unsupported): the same result through List + Describe.
                log.info("sync %s: Search unavailable, using List + Describe: %s", self.source.name, exc)
                self._search_unavailable = True
                self.count("search_fallback")
        if not searched:
            # Shared groups are listed by ARN, as RAM shares require; own groups by name.
            arns = [
                summary["ModelPackageArn"]
                for page in self.client.iter_package_summary_pages(group=group.arn if shared else group.name)
                for summary in page
                if summary.get("ModelPackageArn")
            ]
            seen.update(arns)
            self._process(self._describe_bundles(arns, known, refetch_failed=True))
        self._mark_vanished_packages(mirror, seen)

    def cards_and_endpoints(self) -> None:
        self.ensure_account()
        self.load_groups()
        self._sync_cards()
        self._sync_endpoints()

    def consume_events(self, *, max_batches: int = 10) -> None:
        """Drain EventBridge events from the source's SQS queue, refreshing just the named resources."""
        queue = self.source.events_queue_url
        if not queue:
            return
        self.ensure_account()
        self.load_groups()
        for _ in range(max_batches):
            messages = self.client.receive_messages(queue, wait_seconds=0)
            if not messages:
                return
            for message in messages:
                self._handle_event(queue, message)

    def refresh_package(self, arn: str) -> None:
        """Describe one package now and apply it (used after a push, and by events)."""
        self.ensure_account()
        self.load_groups()
        group = _group_of(arn)
        if group not in self._groups:
            self._describe_and_store_group(group)
        self._process(self._describe_bundles([arn], self._known_reports([arn])))

    # -- groups --------------------------------------------------------------------------
    def _sync_groups(self) -> tuple[set[str], bool]:
        """Store every listed group; returns the listed ARNs and whether the shared listing completed."""
        summaries: dict[str, dict[str, Any]] = {}
        for page in self.client.iter_group_pages():
            summaries.update({s["ModelPackageGroupArn"]: s for s in page})
        cross_account_listed = True
        try:
            for page in self.client.iter_group_pages(cross_account=True):
                summaries.update({s["ModelPackageGroupArn"]: s for s in page})
        except (AccessDeniedError, ValidationError) as exc:
            self.error("ListModelPackageGroups(CrossAccount)", str(exc))
            cross_account_listed = False
        existing = {g.arn: g for g in ModelPackageGroup.objects.filter(source=self.source)}
        for arn, summary in summaries.items():
            try:
                tags = self.client.list_tags(arn)
            except AwsError as exc:
                self.error(f"ListTags {arn}", str(exc))
                tags = None
            self._store_group(sync.group_fields(summary, tags), existing.get(arn))
        return set(summaries), cross_account_listed

    def _describe_and_store_group(self, name_or_arn: str) -> None:
        try:
            described = self.client.describe_group(name_or_arn)
            tags = self.client.list_tags(described["ModelPackageGroupArn"])
        except AwsError as exc:
            self.error(f"DescribeModelPackageGroup {name_or_arn}", str(exc))
            return
        fields = sync.group_fields(described, tags)
        existing = ModelPackageGroup.objects.filter(arn=fields["arn"]).first()
        self._groups[fields["name"]] = self._store_group(fields, existing)

    def _store_group(self, fields: dict[str, Any], existing: ModelPackageGroup | None) -> ModelPackageGroup:
        now = timezone.now()
        if existing is None:
            group = ModelPackageGroup.objects.create(source=self.source, last_seen_at=now, **fields)
            self.count("groups_created")
            return group
        changes = sync.diff(existing.__dict__, fields, tuple(fields))
        if changes or existing.deleted_at is not None:
            for name in changes:
                setattr(existing, name, fields[name])
            existing.deleted_at = None
            existing.last_seen_at = now
            with transaction.atomic():  # the group and its packages' review state commit together
                existing.save()
                group_observed(existing.pk)
            self.count("groups_updated")
        return existing

    def _group_for(self, fields: dict[str, Any]) -> ModelPackageGroup:
        name = fields["group_name"]
        group = self._groups.get(name)
        if group is None:
            arn = sync.group_arn_for_package(fields["arn"], name)
            group = ModelPackageGroup.objects.filter(arn=arn).first() or ModelPackageGroup.objects.create(
                source=self.source, name=name, arn=arn, owner_account=sync.parse_arn(arn).account
            )
            self._groups[name] = group
        return group

    def _mark_vanished_groups(self, seen_arns: set[str], *, cross_account_listed: bool = True) -> None:
        """Groups the complete listing no longer returns, and their packages, are marked deleted.

        Shared groups disappear from listings when the share is revoked: also marked deleted,
        but only when the shared listing itself completed.
        """
        vanished = [
            g
            for g in self._groups.values()
            if g.deleted_at is None
            and g.arn not in seen_arns
            and (cross_account_listed or g.owner_account == self.source.account_id)
        ]
        if not vanished:
            return
        now = timezone.now()
        ModelPackageGroup.objects.filter(pk__in=[g.pk for g in vanished]).update(deleted_at=now)
        for group in vanished:
            group.deleted_at = now
        self.count("groups_deleted", len(vanished))
        self._mark_packages_deleted(
            list(ModelPackage.objects.filter(group__in=vanished, deleted_at__isnull=True).values_list("pk", flat=True))
        )

    # -- packages: producing bundles -----------------------------------------------------
    def _all_summaries(self) -> Iterator[dict[str, Any]]:
        for page in self.client.iter_package_summary_pages():
            yield from page
        for group in self._groups.values():
            if group.deleted_at is None and self.source.account_id and group.owner_account != self.source.account_id:
                for page in self.client.iter_package_summary_pages(group=group.arn):
                    yield from page

    def _mirror_index(self, *, group: ModelPackageGroup | None = None) -> dict[str, dict[str, Any]]:
        rows = ModelPackage.objects.filter(source=self.source)
        if group is not None:
            rows = rows.filter(group=group)
        rows = rows.values(
            "id",
            "arn",
            "approval_status",
            "package_status",
            "description",
            "lifecycle_stage",
            "lifecycle_stage_status",
            "deleted_at",
        )
        return {row["arn"]: row for row in rows.iterator(chunk_size=2000)}

    def _known_reports(
        self, arns: list[str] | None, *, group: ModelPackageGroup | None = None
    ) -> dict[str, dict[str, KnownReport]]:
        qs = EvaluationReport.objects.filter(package__source=self.source)
        if group is not None:
            qs = qs.filter(package__group=group)
        if arns is not None:
            if not arns:
                return {}
            qs = qs.filter(package__arn__in=arns)
        known: dict[str, dict[str, KnownReport]] = {}
        for arn, slot, uri, digest, status in qs.values_list(
            "package__arn", "slot", "s3_uri", "content_digest", "status"
        ).iterator(chunk_size=2000):
            known.setdefault(arn, {})[slot] = KnownReport(uri, digest, status)
        return known

    def _reports_to_fetch(
        self, record: dict[str, Any], known: dict[str, KnownReport], *, refetch_failed: bool
    ) -> list[sync.MetricsSourceRef]:
        wanted = []
        for ref in sync.metrics_sources(record.get("ModelMetrics")):
            prior = known.get(ref.slot)
            if (
                prior is None
                or prior.s3_uri != ref.s3_uri
                or prior.content_digest != ref.content_digest
                or (refetch_failed and prior.status == EvaluationReport.Status.FETCH_ERROR)
            ):
                wanted.append(ref)
        return wanted

    def _describe_bundles(
        self, arns: list[str], known: dict[str, dict[str, KnownReport]], *, refetch_failed: bool = False
    ) -> Iterator[Bundle]:
        def job(arn: str) -> Bundle:
            try:
                record = self.client.describe_package(arn)
            except NotFoundError:
                return Bundle(arn, error="gone")  # deleted between listing and describe
            except AwsError as exc:
                return Bundle(arn, error=str(exc))
            refs = self._reports_to_fetch(record, known.get(arn, {}), refetch_failed=refetch_failed)
            return Bundle(arn, record, [fetch_report(self.client, ref) for ref in refs])

        yield from self._parallel(job, arns)

    def _search_bundles(
        self, known: dict[str, dict[str, KnownReport]], seen: set[str], *, group: str
    ) -> Iterator[Bundle]:
        def job(record: dict[str, Any]) -> Bundle:
            arn = record["ModelPackageArn"]
            refs = self._reports_to_fetch(record, known.get(arn, {}), refetch_failed=True)
            return Bundle(arn, record, [fetch_report(self.client, ref) for ref in refs])

        def records() -> Iterator[dict[str, Any]]:
            for page in self.client.iter_search_package_pages(group=group):
                for record in page:
                    # The filter is the API's; a record of another group is not this shard's to apply.
                    if (
                        record.get("ModelPackageArn")
                        and record.get("ModelPackageVersion") is not None
                        and record.get("ModelPackageGroupName") == group
                    ):
                        seen.add(record["ModelPackageArn"])
                        yield record

        yield from self._parallel(job, records())

    def _parallel(self, job: Any, items: Iterable[Any]) -> Iterator[Bundle]:
        """Run ``job`` over items on SYNC_THREADS threads, yielding results in submission order.

        At most 4×threads jobs are in flight, so memory stays flat however many packages there are.
        """
        threads = max(1, settings.SYNC_THREADS)
        window: list[Future[Bundle]] = []
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"sync-{self.source.name}") as pool:
            for item in items:
                window.append(pool.submit(job, item))
                if len(window) >= threads * 4:
                    yield window.pop(0).result()
            while window:
                yield window.pop(0).result()

    # -- packages: applying bundles ------------------------------------------------------
    def _process(self, bundles: Iterable[Bundle]) -> None:
        batch: list[Bundle] = []
        done = 0
        for bundle in bundles:
            batch.append(bundle)
            if len(batch) >= PAGE:
                self._apply_batch(batch)
                done += len(batch)
                batch = []
                self.progress(f"Processed {done} packages")
        if batch:
            self._apply_batch(batch)

    def _apply_batch(self, bundles: list[Bundle]) -> None:
        arns = [b.arn for b in bundles if b.record is not None]
        existing = {p.arn: p for p in ModelPackage.objects.filter(arn__in=arns)} if arns else {}
        for bundle in bundles:
            if bundle.record is None:
                if bundle.error == "gone":
                    self.count("vanished_before_describe")
                else:
                    self.error(bundle.arn, bundle.error)
                continue
            self.count("described")
            try:
                prior = existing.get(bundle.arn)
                with transaction.atomic():
                    package = self._apply_record(bundle.record, prior)
                    if bundle.reports:
                        self._store_reports(package, bundle.reports, is_new=prior is None)
                        package_reports_observed(package)
            except (sync.RecordError, ValueError, TypeError, KeyError) as exc:
                self.error(bundle.arn, f"malformed registry record: {exc}")

    def _apply_record(self, record: dict[str, Any], existing: ModelPackage | None) -> ModelPackage:
        fields = sync.package_fields(record)
        group = self._group_for(fields)
        fields.pop("group_name")
        now = timezone.now()
        if existing is None or existing.content_hash != fields["content_hash"]:
            card_name = sync.referenced_card(fields["customer_metadata"])
            if card_name:
                fields["model_card"] = ModelCard.objects.filter(source=self.source, name=card_name).first()
        if existing is None:
            package = ModelPackage.objects.create(source=self.source, group=group, last_synced_at=now, **fields)
            PackageObservation.objects.create(
                package=package,
                sync_run=self.run,
                observed_at=now,
                change=PackageObservation.Change.CREATED,
                changes={"approval_status": [None, package.approval_status]},
            )
            self.count("packages_created")
            package_observed(package, created=True, changes={})
            return package
        restored = existing.deleted_at is not None
        if existing.content_hash == fields["content_hash"] and not restored:
            self.count("packages_unchanged")
            return existing
        changes = sync.diff(existing.__dict__, fields, sync.TRACKED_FIELDS)
        for name, value in fields.items():
            setattr(existing, name, value)
        existing.group = group
        existing.deleted_at = None
        existing.last_synced_at = now
        existing.save()
        if changes or restored:
            PackageObservation.objects.create(
                package=existing,
                sync_run=self.run,
                observed_at=now,
                change=PackageObservation.Change.RESTORED if restored else PackageObservation.Change.UPDATED,
                changes=changes,
            )
            self.count("packages_restored" if restored else "packages_updated")
        else:
            self.count("packages_raw_updated")
        package_observed(existing, created=False, changes=changes)
        return existing

    def _store_reports(self, package: ModelPackage, fetched: list[FetchedReport], *, is_new: bool) -> None:
        """Upsert fetched reports and their metrics; a new package costs one INSERT per report."""
        now = timezone.now()
        existing = {} if is_new else {r.slot: r for r in package.reports.all()}
        for item in fetched:
            parsed = item.parsed
            report = existing.get(item.ref.slot)
            values = {
                "s3_uri": item.ref.s3_uri,
                "content_type": item.ref.content_type,
                "content_digest": item.ref.content_digest,
                "sha256": item.sha256,
                "size_bytes": item.size,
                "status": item.status,
                "error": item.error,
                "kind": parsed.kind if parsed is not None else "",
                "document": item.document if parsed is not None else None,
                "curves": parsed.curves if parsed is not None else {},
                "confusion_matrix": parsed.confusion_matrix if parsed is not None else None,
                "fetched_at": now,
            }
            if report is None:
                report = EvaluationReport.objects.create(package=package, slot=item.ref.slot, **values)
            elif all(
                getattr(report, k) == values[k] for k in ("s3_uri", "content_digest", "status", "sha256", "error")
            ):
                continue  # refetched (e.g. a retried fetch error) and nothing changed
            else:
                for key, value in values.items():
                    setattr(report, key, value)
                report.save()
                report.metrics.all().delete()
            if parsed is not None:
                Metric.objects.bulk_create(
                    Metric(
                        report=report,
                        package=package,
                        name=m.name[:255],
                        value=m.value,
                        standard_deviation=m.standard_deviation,
                        kind=m.kind,
                        facet=m.facet[:255],
                        stage=m.stage,
                    )
                    for m in parsed.metrics
                )
                self.count("reports_parsed")
            else:
                self.count("report_errors")
                self.error(f"{package.arn} {item.ref.slot}", f"{item.status}: {item.error}")
        if not is_new:
            # Slots that disappeared from ModelMetrics leave the mirror of the current state.
            current = {ref.slot for ref in sync.metrics_sources(package.model_metrics)}
            gone = [r.pk for slot, r in existing.items() if slot not in current]
            if gone:
                EvaluationReport.objects.filter(pk__in=gone).delete()

    def _mark_vanished_packages(self, mirror: dict[str, dict[str, Any]], seen: set[str]) -> None:
        """Packages the complete listing no longer returns: marked deleted, never removed."""
        self._mark_packages_deleted(
            [row["id"] for arn, row in mirror.items() if arn not in seen and row["deleted_at"] is None]
        )

    def _mark_packages_deleted(self, gone: list[int]) -> None:
        if not gone:
            return
        now = timezone.now()
        with transaction.atomic():
            ModelPackage.objects.filter(pk__in=gone).update(deleted_at=now)
            PackageObservation.objects.bulk_create(
                PackageObservation(
                    package_id=pk, sync_run=self.run, observed_at=now, change=PackageObservation.Change.DELETED
                )
                for pk in gone
            )
            packages_vanished(gone)
        self.count("packages_deleted", len(gone))

    # -- model cards ---------------------------------------------------------------------
    def _sync_cards(self) -> None:
        summaries: dict[str, dict[str, Any]] = {}
        try:
            for page in self.client.iter_model_card_pages():
                summaries.update({s["ModelCardName"]: s for s in page if s.get("ModelCardName")})
        except AwsError as exc:
            self.error("ListModelCards", str(exc))
            return
        existing = {c.name: c for c in ModelCard.objects.filter(source=self.source)}
        packages = list(
            ModelPackage.objects.filter(source=self.source).values_list(
                "id", "customer_metadata", "group__name", "model_card_id"
            )
        )
        wanted: dict[int, str] = {}
        for pk, meta, group_name, _ in packages:
            name = sync.referenced_card(meta) or (group_name if group_name in summaries else "")
            if name:
                wanted[pk] = name
        for name in sorted(set(wanted.values())):
            summary = summaries.get(name)
            card = existing.get(name)
            if summary is None:
                if card is not None and card.deleted_at is None:
                    card.deleted_at = timezone.now()
                    card.save(update_fields=["deleted_at"])
                    self.count("cards_deleted")
                continue
            modified = sync.parse_time(summary.get("LastModifiedTime"))
            if (
                card is not None
                and card.deleted_at is None
                and card.last_modified_at == modified
                and (card.status == summary.get("ModelCardStatus"))
            ):
                continue
            existing[name] = self._store_card(name, card)
        card_ids = {name: c.pk for name, c in existing.items() if c is not None}
        for pk, _meta, _group, current in packages:
            target = card_ids.get(wanted.get(pk, ""))
            if target != current:
                with transaction.atomic():
                    ModelPackage.objects.filter(pk=pk).update(model_card_id=target)
                    card_link_observed(pk)
                self.count("card_links_changed")

    def _store_card(self, name: str, card: ModelCard | None) -> ModelCard | None:
        from registry_app.mirror import cards

        try:
            record = self.client.describe_model_card(name)
            fields = sync.card_fields(record)
        except (AwsError, sync.RecordError) as exc:
            self.error(f"DescribeModelCard {name}", str(exc))
            return card
        try:
            content = cards.parse_card_content(record.get("Content"))
            fields.update(content=content, content_error="", content_hash=cards.content_hash(content))
        except cards.CardContentError as exc:
            fields.update(content=None, content_error=str(exc), content_hash="")
        if card is None:
            card = ModelCard.objects.create(source=self.source, **fields)
            self.count("cards_created")
            return card
        content_changed = (card.version, card.content_hash) != (fields["version"], fields["content_hash"])
        for key, value in fields.items():
            setattr(card, key, value)
        card.deleted_at = None
        with transaction.atomic():
            card.save()
            if content_changed:
                self.count("stale_signoffs", card_observed(card))
            card_stored(card)
        self.count("cards_updated")
        return card

    # -- endpoints -----------------------------------------------------------------------
    def _sync_endpoints(self) -> None:
        try:
            summaries = [s for page in self.client.iter_endpoint_pages() for s in page]
        except AwsError as exc:
            self.error("ListEndpoints", str(exc))
            return
        existing = {e.arn: e for e in Endpoint.objects.filter(source=self.source)}
        seen = set()
        for summary in summaries:
            arn = summary.get("EndpointArn")
            if not arn:
                continue
            seen.add(arn)
            endpoint = existing.get(arn)
            modified = sync.parse_time(summary.get("LastModifiedTime"))
            if (
                endpoint is not None
                and endpoint.deleted_at is None
                and endpoint.last_modified_at == modified
                and endpoint.status == (summary.get("EndpointStatus") or "")
            ):
                continue
            try:
                self._store_endpoint(summary, endpoint)
            except (AwsError, sync.RecordError) as exc:
                self.error(f"endpoint {summary.get('EndpointName')}", str(exc))
        gone = [e.pk for arn, e in existing.items() if arn not in seen and e.deleted_at is None]
        if gone:
            Endpoint.objects.filter(pk__in=gone).update(deleted_at=timezone.now())
            self.count("endpoints_deleted", len(gone))

    def _store_endpoint(self, summary: dict[str, Any], endpoint: Endpoint | None) -> None:
        name = summary["EndpointName"]
        described = self.client.describe_endpoint(name)
        config_name = described.get("EndpointConfigName") or ""
        config = self.client.describe_endpoint_config(config_name) if config_name else {}
        models: dict[str, dict[str, Any]] = {}
        for variant in config.get("ProductionVariants") or []:
            model_name = variant.get("ModelName")
            if model_name and model_name not in models:
                try:
                    models[model_name] = self.client.describe_model(model_name)
                except NotFoundError:
                    models[model_name] = {}
        rows = sync.endpoint_variants(config, models)
        # Live weights from DescribeEndpoint override the config's initial weights.
        live = {v.get("VariantName"): v for v in described.get("ProductionVariants") or []}
        for row in rows:
            current = live.get(row["variant_name"]) or {}
            if current.get("CurrentWeight") is not None:
                row["weight"] = current["CurrentWeight"]
            if current.get("CurrentInstanceCount") is not None:
                row["instance_count"] = current["CurrentInstanceCount"]
        packages = {
            p.arn: p.pk
            for p in ModelPackage.objects.filter(arn__in=[r["package_arn"] for r in rows if r["package_arn"]])
        }
        with transaction.atomic():
            fields = {
                "name": name,
                "status": str(described.get("EndpointStatus") or ""),
                "config_name": config_name,
                "created_at": sync.parse_time(described.get("CreationTime")),
                "last_modified_at": sync.parse_time(described.get("LastModifiedTime")),
                "deleted_at": None,
            }
            if endpoint is None:
                endpoint = Endpoint.objects.create(source=self.source, arn=described["EndpointArn"], **fields)
            else:
                for key, value in fields.items():
                    setattr(endpoint, key, value)
                endpoint.save()
            endpoint.variants.all().delete()
            EndpointVariant.objects.bulk_create(
                EndpointVariant(endpoint=endpoint, package_id=packages.get(row["package_arn"]), **row) for row in rows
            )
        self.count("endpoints_updated")

    # -- events --------------------------------------------------------------------------
    def _handle_event(self, queue: str, message: dict[str, Any]) -> None:
        receipt = message.get("ReceiptHandle", "")
        try:
            detail_type, detail = sync.parse_event(message.get("Body", ""))
        except sync.RecordError as exc:
            self.error(f"event {message.get('MessageId', '?')}", f"discarded: {exc}")
            self.client.delete_message(queue, receipt)
            return
        self.count("events_received")
        if detail_type == "SageMaker Model Package State Change":
            arn = detail.get("ModelPackageArn")
            if arn and (detail.get("ModelPackageVersion") is not None or str(arn).rsplit("/", 1)[-1].isdigit()):
                # The event may be stale or duplicated: describe for the current truth.
                self.refresh_package(str(arn))
                self.count("events_applied")
        elif detail_type == "SageMaker Model Card State Change":
            name = detail.get("ModelCardName")
            if name:
                card = ModelCard.objects.filter(source=self.source, name=name).first()
                self._store_card(str(name), card)
                self.count("events_applied")
        else:
            self.count("events_ignored")
        # Retryable AWS errors propagate before this line, leaving the message for redelivery.
        self.client.delete_message(queue, receipt)


def apply_package_record(source: RegistrySource, record: dict[str, Any]) -> ModelPackage:
    """Apply one fresh DescribeModelPackage result to the mirror now (e.g. right after a push).

    Same mapping, change detection and observation log as the sync; no AWS call. Reports
    are left to the next sync (a push never changes ModelMetrics).
    """
    syncer = RegistrySync(source, None, RegistryClient(SourceConfig.from_source(source)))  # makes no call
    syncer.load_groups()
    with transaction.atomic():
        existing = ModelPackage.objects.select_for_update().filter(arn=record.get("ModelPackageArn")).first()
        return syncer._apply_record(record, existing)


def package_refresh(package_id: int) -> ModelPackage | None:
    """Describe one mirrored package now and apply what the registry says (after a push).

    The push changes the registry, never the mirror: it enqueues this through
    ``refresh_package_task``, so the review domain never calls back into the sync. A package
    the registry no longer knows is left to the next reconciliation (which confirms deletions);
    retryable AWS errors propagate for the task's retry.
    """
    package = ModelPackage.objects.select_related("source").filter(pk=package_id).first()
    if package is None:
        return None
    syncer = RegistrySync(package.source, None, RegistryClient(SourceConfig.from_source(package.source)))
    try:
        record = syncer.client.describe_package(package.arn)
    except NotFoundError:
        log.info("refresh of package %s: not found in the registry; the next sync decides", package_id)
        return package
    return apply_package_record(package.source, record)


def _group_of(package_arn: str) -> str:
    resource = sync.parse_arn(package_arn).resource
    return resource.rsplit("/", 1)[0]
