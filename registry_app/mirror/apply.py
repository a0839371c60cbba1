"""Applying what the registry says to the mirror: package records (with their reports) and deletions.

``PackageWriter`` holds the writes every package pass shares (``reconcile``'s passes, ``changes``'
Search pass): one small transaction per package on the calling thread, so one bad package is recorded
and the rest continue. A package is written, and gets an observation, only when its content changed.

Deletions are confirmed: a package a listing (or a Search) no longer returns is described first, and
marked deleted only when DescribeModelPackage says it does not exist. Search's index can lag behind the
registry and a listing can miss a record; a describe that succeeds applies the package instead, and any
other answer leaves it as it was ("unknown": the next pass asks again).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from registry_app.mirror import mapping as sync
from registry_app.mirror.context import SyncContext
from registry_app.mirror.fetch import Bundle, FetchedReport, KnownReport, describe_bundles
from registry_app.mirror.groups import ensure_groups, group_for
from registry_app.mirror.provenance import mirror_provenance
from registry_app.models import EvaluationReport, Metric, ModelCard, ModelPackage, ModelPackageGroup, PackageObservation
from registry_app.review.on_sync import (  # governance: stale sign-offs, reviews, the stored review state
    package_observed,
    package_reports_observed,
    packages_vanished,
)

log = logging.getLogger(__name__)
PAGE = 100


class PackageWriter(SyncContext):
    """The package writes of one sync step (see the module docstring)."""

    # -- what the mirror already holds ---------------------------------------------------
    def _mirror_index(self, *, group: ModelPackageGroup | None = None) -> dict[str, dict[str, Any]]:
        """This source's packages by lower-cased ARN (ARNs are compared without regard to case)."""
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
        return {row["arn"].lower(): row for row in rows.iterator(chunk_size=2000)}

    def _known_reports(
        self, arns: list[str] | None, *, group: ModelPackageGroup | None = None
    ) -> dict[str, dict[str, KnownReport]]:
        """Stored reports by lower-cased package ARN, then slot."""
        qs = EvaluationReport.objects.filter(package__source=self.source)
        if group is not None:
            qs = qs.filter(package__group=group)
        if arns is not None:
            if not arns:
                return {}
            qs = qs.filter(package__arn__in=sorted({v for arn in arns for v in (arn, arn.lower())}))
        known: dict[str, dict[str, KnownReport]] = {}
        for arn, slot, uri, digest, status in qs.values_list(
            "package__arn", "slot", "s3_uri", "content_digest", "status"
        ).iterator(chunk_size=2000):
            known.setdefault(arn.lower(), {})[slot] = KnownReport(uri, digest, status)
        return known

    # -- applying bundles ----------------------------------------------------------------
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
        """Apply each bundle in its own transaction. A bundle without a record is counted (gone) or
        recorded (its AWS error: ``packages_unapplied``); a malformed record is recorded and skipped."""
        records = [b.record for b in bundles if b.record is not None]
        ensure_groups(self, records)
        arns = [str(r.get("ModelPackageArn") or "") for r in records]
        spellings = sorted({v for arn in arns if arn for v in (arn, arn.lower())})
        existing = {p.arn.lower(): p for p in ModelPackage.objects.filter(arn__in=spellings)} if spellings else {}
        for bundle in bundles:
            if bundle.record is None:
                if bundle.error == "gone":
                    self.count("vanished_before_describe")
                else:
                    self.count("packages_unapplied")
                    self.error(bundle.arn, bundle.error)
                continue
            self.count("described")
            try:
                prior = existing.get(bundle.arn.lower())
                with transaction.atomic():
                    package = self._apply_record(bundle.record, prior, reports_follow=bool(bundle.reports))
                    if bundle.reports:
                        self._store_reports(package, bundle.reports, is_new=prior is None)
                        package_reports_observed(package, created=prior is None)
            except (sync.RecordError, ValueError, TypeError, KeyError) as exc:
                self.error(bundle.arn, f"malformed registry record: {exc}")
        mirror_provenance(self, arns)  # training jobs and lineage of what changed (AWS calls counted here too)

    def _apply_record(
        self, record: dict[str, Any], existing: ModelPackage | None, *, reports_follow: bool = False
    ) -> ModelPackage:
        fields = sync.package_fields(record)
        group = group_for(self, fields)
        fields.pop("group_name")
        now = timezone.now()
        if existing is None or existing.content_hash != fields["content_hash"]:
            card_name = sync.referenced_card(fields["customer_metadata"])
            if card_name:
                # A name taken from a card ARN is lower-cased: matched without regard to case.
                fields["model_card"] = ModelCard.objects.filter(source=self.source, name__iexact=card_name).first()
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
            package_observed(package, created=True, changes={}, reports_follow=reports_follow)
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
        package_observed(existing, created=False, changes=changes, reports_follow=reports_follow)
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
                self.count("reports_empty" if item.status == EvaluationReport.Status.EMPTY else "report_errors")
                self.error(f"{package.arn} {item.ref.slot}", f"{item.status}: {item.error}")
        if not is_new:
            # Slots that disappeared from ModelMetrics leave the mirror of the current state.
            current = {ref.slot for ref in sync.metrics_sources(package.model_metrics)}
            gone = [r.pk for slot, r in existing.items() if slot not in current]
            if gone:
                EvaluationReport.objects.filter(pk__in=gone).delete()

    # -- deletions -----------------------------------------------------------------------
    def _mark_vanished_packages(self, mirror: dict[str, dict[str, Any]], seen: set[str]) -> None:
        """Packages a complete listing (``seen``: lower-cased ARNs) no longer returns, confirmed one by one
        with DescribeModelPackage: not found -> marked deleted (never removed); found -> applied (the listing
        or Search's index missed it); any other answer -> left as they are, recorded, asked again next pass."""
        candidates = {row["arn"]: row["id"] for key, row in mirror.items() if key not in seen and not row["deleted_at"]}
        if not candidates:
            return
        known = self._known_reports(list(candidates))
        gone: list[int] = []
        live: list[Bundle] = []
        for bundle in describe_bundles(self.client, list(candidates), known, source_name=self.source.name):
            if bundle.record is not None:
                live.append(bundle)
            elif bundle.error == "gone":
                gone.append(candidates[bundle.arn])
            else:
                self.count("deletions_unconfirmed")
                self.error(bundle.arn, f"missing from the listing, not marked deleted: {bundle.error}")
        if live:
            self.count("deletions_refuted", len(live))
            self._apply_batch(live)
        self._mark_packages_deleted(gone)

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
