"""The package passes of a sync: AWS adapter -> pure mapping (``mapping``) -> database (``apply``).

Transactions wrap database writes only. AWS calls (describe, S3 GETs) run in a thread pool
(``fetch``); every database write happens on the calling thread, one small transaction per
package, so a failure in one package is recorded and the rest continue.

- ``incremental``: content changes through Search from the watermark (``changes``), then list every
  package and describe only what is new or whose summary changed.
- ``full_plan`` / ``reconcile_groups``: a full reconciliation's first step (the groups) and one
  shard's groups (Search filtered by group in creation order, or List + Describe); ``shards`` runs them.
- ``refresh_package`` (events), ``apply_package_record`` and ``package_refresh`` (after a push):
  one package now.

A package is written, and gets an observation, only when its content changed. A package missing
from a *complete* listing is described, and marked deleted (never removed) only when the registry
says it does not exist; a listing that fails half-way marks nothing. Running a SyncRun (claim, lease,
mode, outcome) is ``execute``'s; sharding is ``shards``'.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from django.db import transaction

from registry_app.aws.errors import AccessDeniedError, AwsError, NotFoundError, ValidationError
from registry_app.aws.sagemaker import RegistryClient
from registry_app.aws.session import SourceConfig
from registry_app.mirror import mapping as sync
from registry_app.mirror.apply import PackageWriter
from registry_app.mirror.changes import search_available, search_changes, search_unavailable
from registry_app.mirror.fetch import describe_bundles, search_bundles
from registry_app.mirror.groups import mark_vanished_groups, sync_groups
from registry_app.models import ModelPackage, ModelPackageGroup, RegistrySource

log = logging.getLogger(__name__)


class RegistrySync(PackageWriter):
    """The package passes over one source, on the shared sync state and writes (``PackageWriter``)."""

    # Set once Search is denied (or unsupported): this run's remaining groups use List + Describe.
    _search_unavailable = False

    # -- passes --------------------------------------------------------------------------
    def incremental(self) -> None:
        """Content changes through Search since the watermark (one call when nothing changed); then list
        every versioned package (⌈N/100⌉ calls) and describe only what is new or whose summary changed."""
        self.ensure_account()
        self.load_groups()
        search_changes(self)
        mirror = self._mirror_index()
        to_describe: list[str] = []
        seen: set[str] = set()
        listed = 0
        for summary in self._all_summaries():
            arn = summary.get("ModelPackageArn")
            if not arn:
                continue
            seen.add(arn.lower())
            listed += 1
            row = mirror.get(arn.lower())
            if row is None or row["deleted_at"] is not None or sync.summary_differs(row, summary):
                to_describe.append(arn)
            if listed % 500 == 0:
                self.progress(f"Listed {listed} packages")
        self.count("listed", listed)
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
                search_available(self.source)
            except (AccessDeniedError, ValidationError) as exc:
                # Search denied (or unsupported): the same result through List + Describe.
                log.info("sync %s: Search unavailable, using List + Describe: %s", self.source.name, exc)
                self._search_unavailable = True
                self.count("search_fallback")
                search_unavailable(self, exc)
        if not searched:
            # Shared groups are listed by ARN, as RAM shares require; own groups by name.
            arns = [
                summary["ModelPackageArn"]
                for page in self.client.iter_package_summary_pages(group=group.arn if shared else group.name)
                for summary in page
                if summary.get("ModelPackageArn")
            ]
            seen.update(arn.lower() for arn in arns)
            self._process(describe_bundles(self.client, arns, known, source_name=self.source.name, refetch_failed=True))
        self._mark_vanished_packages(mirror, seen)

    def refresh_package(self, arn: str) -> AwsError | None:
        """Describe one package now and apply it (events). Returns the AWS error that kept it from being
        read, or None once it is applied, gone from the registry, or recorded as malformed."""
        self.ensure_account()
        self.load_groups()
        known = self._known_reports([arn])
        bundles = list(describe_bundles(self.client, [arn], known, source_name=self.source.name))
        self._process(bundles)
        return next((b.failure for b in bundles if b.failure is not None), None)

    # -- packages: the listing, and what the mirror already holds ----------------------
    def _all_summaries(self) -> Iterator[dict[str, Any]]:
        for page in self.client.iter_package_summary_pages():
            yield from page
        for group in self.groups.values():
            if group.deleted_at is None and self.source.account_id and group.owner_account != self.source.account_id:
                for page in self.client.iter_package_summary_pages(group=group.arn):
                    yield from page


def apply_package_record(source: RegistrySource, record: dict[str, Any]) -> ModelPackage:
    """Apply one fresh DescribeModelPackage result to the mirror now (e.g. right after a push).

    Same mapping, change detection and observation log as the sync; no AWS call. Reports
    are left to the next sync (a push never changes ModelMetrics).
    """
    syncer = RegistrySync(source, None, RegistryClient(SourceConfig.from_source(source)))  # makes no call
    syncer.load_groups()
    arn = str(record.get("ModelPackageArn") or "")
    with transaction.atomic():
        existing = ModelPackage.objects.select_for_update().filter(arn__in={arn, arn.lower()}).first()
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
