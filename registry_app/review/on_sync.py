"""What the governance side does when the sync sees a package (or a card) change.

The sync calls these inside its own per-package transaction. They only write to the database
and register ``on_commit`` work, and a failure here never breaks the sync: it runs in a
savepoint and is logged.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from registry_app.models import ModelCard, ModelPackage, SignOff, SyncRun
from registry_app.models.registry import ApprovalStatus

__all__ = ["REVIEWED_FIELDS", "card_observed", "package_observed"]

log = logging.getLogger(__name__)

# Mirror fields that feed ``package_fingerprint``; a change to any of them may make sign-offs stale.
REVIEWED_FIELDS = frozenset(
    {
        "description",
        "inference_specification",
        "model_metrics",
        "metadata_properties",
        "customer_metadata",
        "embedded_card_content",
        "model_card",
    }
)


def package_observed(package: ModelPackage, *, created: bool, changes: dict[str, Any]) -> None:
    """Called by ``RegistrySync._apply_record`` after it created or updated a package row.

    * The mirror sees the package pending for the first time (created as
      PendingManualApproval, or its status changed to it): ``enqueue_review_requested``.
    * Reviewed content changed: sign-offs whose fingerprint no longer matches are marked stale
      (one EXISTS query first, so packages nobody signed cost nothing more).
    """
    if _became_pending(package, created=created, changes=changes):
        try:
            from registry_app.notifications.emails import enqueue_review_requested

            enqueue_review_requested(package.pk)
        except Exception:  # noqa: BLE001 - a notification problem must not stop the sync
            log.exception("could not schedule the review request for package %s", package.pk)
    if not created and REVIEWED_FIELDS.intersection(changes):
        _mark_stale_safely(package)
    _flag_outside_decision(package, created=created, changes=changes)


def _flag_outside_decision(package: ModelPackage, *, created: bool, changes: dict[str, Any]) -> None:
    """A status the dashboard did not push (Studio, CLI, a pipeline) is flagged for compliance.

    A package first seen already decided counts only when its source had been mirrored before
    (registered as Approved behind the dashboard's back); the first sync of an existing registry
    flags nothing, since the dashboard was not yet watching.
    """
    from registry_app.audit.outside_decisions import package_observed_status_change

    status = changes.get("approval_status")
    if not created and status:
        package_observed_status_change(package, status[0] or "", package.approval_status, package.last_synced_at)
    elif created and package.approval_status != ApprovalStatus.PENDING and _source_mirrored_before(package):
        package_observed_status_change(package, "", package.approval_status, package.last_synced_at)


def _source_mirrored_before(package: ModelPackage) -> bool:
    return SyncRun.objects.filter(
        source_id=package.source_id, status__in=[SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL]
    ).exists()


def card_observed(card: ModelCard) -> int:
    """For the sync's card path: a standalone card's content changed. Marks stale the sign-offs
    of the packages linked to it; returns how many. (The evaluation compares fingerprints
    anyway, so a card change the sync does not report is still caught at the next sign-off.)"""
    total = 0
    packages = ModelPackage.objects.filter(model_card=card, signoffs__stale_at__isnull=True).distinct()
    for package in packages.select_related("group", "model_card"):
        total += _mark_stale_safely(package, check=False)
    return total


def _became_pending(package: ModelPackage, *, created: bool, changes: dict[str, Any]) -> bool:
    if package.deleted_at is not None or package.approval_status != ApprovalStatus.PENDING:
        return False
    if created:
        return True
    before_after = changes.get("approval_status")
    return bool(before_after) and before_after[0] != ApprovalStatus.PENDING


def _mark_stale_safely(package: ModelPackage, *, check: bool = True) -> int:
    from registry_app.review.staleness import signoffs_mark_stale

    try:
        with transaction.atomic():
            if check and not SignOff.objects.filter(package=package, stale_at__isnull=True).exists():
                return 0
            return signoffs_mark_stale(package)
    except Exception:  # noqa: BLE001 - the evaluation re-checks fingerprints; the sync must go on
        log.exception("could not mark stale sign-offs of package %s", package.pk)
        return 0
