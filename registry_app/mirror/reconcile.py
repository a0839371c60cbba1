"""The package passes of a sync: AWS adapter -> pure mapping (``mapping``) -> database.

Transactions wrap database writes only. AWS calls (describe, S3 GETs) run in a thread pool
(``fetch``); every database write happens on the calling thread, one small transaction per
package, so a failure in one package is recorded and the rest continue.

- ``incremental``: list every package, describe only what is new or changed.
- ``full_plan`` / ``reconcile_groups``: a full reconciliation's first step (the groups) and one
  shard's groups (Search filtered by group, or List + Describe); ``shards`` runs them.
- ``refresh_package`` (events), ``apply_package_record`` and ``package_refresh`` (after a push):
  one package now.

A package is written, and gets an observation, only when its content changed. A package missing
from a *complete* listing is marked deleted, never removed; a listing that fails half-way marks
nothing. Running a SyncRun (claim, lease, mode, outcome) is ``execute``'s; sharding is ``shards``'.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from django.db import transaction
from django.utils import timezone

from registry_app.aws.errors import AccessDeniedError, NotFoundError, ValidationError
from registry_app.aws.sagemaker import RegistryClient
from registry_app.aws.session import SourceConfig
from registry_app.mirror import mapping as sync
from registry_app.mirror.context import SyncContext
from registry_app.mirror.fetch import Bundle, FetchedReport, KnownReport, describe_bundles, search_bundles
from registry_app.mirror.groups import describe_and_store_group, group_for, group_of, mark_vanished_groups, sync_groups
from registry_app.mirror.provenance import mirror_provenance
from registry_app.models import (
    EvaluationReport,
    Metric,
    ModelCard,
    ModelPackage,
    ModelPackageGroup,
    PackageObservation,
    RegistrySource,
)
from registry_app.review.on_sync import package_observed  # governance: stale sign-offs, reviews

log = logging.getLogger(__name__)
PAGE = 100


class RegistrySync(SyncContext):
    """The package passes over one source, on the shared sync state (``SyncContext``)."""

    # Set once Search is denied (or unsupported): this run's remaining groups use List + Describe.
    _search_unavailable = False

    # -- passes --------------------------------------------------------------------------
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
        new_group_names = {arn_group for arn in to_describe if (arn_group := group_of(arn)) not in self.groups}
        for name in sorted(new_group_names):
            describe_and_store_group(self, name)
        known = self._known_reports(to_describe)
        self._process(describe_bundles(self.client, to_describe, known, source_name=self.source.name))
        self._mark_vanished_packages(mirror, seen)

    def full_plan(self) -> list[int]:
        """Full reconciliation, first step: the complete group listing (own and shared through
        RAM, with tags); vanished groups and their packages are marked deleted. Returns the ids
        of the groups whose packages the shards reconcile. A failed listing raises."""
        self.ensure_account()
        seen_groups, cross_account_listed = sync_groups(self)
        self.load_groups()
        vanished = mark_vanished_groups(self, seen_groups, cross_account_listed=cross_account_listed)
        if vanished:
            of_vanished = ModelPackage.objects.filter(group__in=vanished, deleted_at__isnull=True)
            self._mark_packages_deleted(list(of_vanished.values_list("pk", flat=True)))
        return sorted(g.pk for g in self.groups.values() if g.deleted_at is None)

    def reconcile_groups(self, group_ids: Iterable[int]) -> None:
        """Full reconciliation, one shard: every package of these groups. One group's failure is
        recorded (``groups_failed``) and leaves that group untouched; the others continue."""
        self.ensure_account()
        self.load_groups()
        wanted = set(group_ids)
        for group in sorted((g for g in self.groups.values() if g.pk in wanted), key=lambda g: g.name):
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
                self._process(search_bundles(self.client, known, seen, group=group.name, source_name=self.source.name))
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
            self._process(describe_bundles(self.client, arns, known, source_name=self.source.name, refetch_failed=True))
        self._mark_vanished_packages(mirror, seen)

    def refresh_package(self, arn: str) -> None:
        """Describe one package now and apply it (used after a push, and by events)."""
        self.ensure_account()
        self.load_groups()
        group = group_of(arn)
        if group not in self.groups:
            describe_and_store_group(self, group)
        known = self._known_reports([arn])
        self._process(describe_bundles(self.client, [arn], known, source_name=self.source.name))

    # -- packages: the listing, and what the mirror already holds ----------------------
    def _all_summaries(self) -> Iterator[dict[str, Any]]:
        for page in self.client.iter_package_summary_pages():
            yield from page
        for group in self.groups.values():
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
            except (sync.RecordError, ValueError, TypeError, KeyError) as exc:
                self.error(bundle.arn, f"malformed registry record: {exc}")
        mirror_provenance(self, arns)  # training jobs and lineage of what changed (AWS calls counted here too)

    def _apply_record(self, record: dict[str, Any], existing: ModelPackage | None) -> ModelPackage:
        fields = sync.package_fields(record)
        group = group_for(self, fields)
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
        self.count("packages_deleted", len(gone))


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
