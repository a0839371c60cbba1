"""What the governance side does when the sync sees a package, its reports, a card or a group change.

The sync calls these inside its own transactions. They only write to the database and register
``on_commit`` work, and a failure here never breaks the sync: it runs in a savepoint and is logged
(a review-state row left behind is found and fixed by the nightly ``review_state_verify``).

Every hook refreshes the stored review state of the packages it concerns
(``queue_state.review_state_refresh``), in the sync's transaction.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from registry_app.models import ModelCard, ModelPackage, SignOff, SyncRun
from registry_app.models.registry import ApprovalStatus

__all__ = [
    "REVIEWED_FIELDS",
    "card_link_observed",
    "card_observed",
    "card_stored",
    "group_observed",
    "package_observed",
    "package_reports_observed",
    "packages_vanished",
]

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


def package_observed(
    package: ModelPackage, *, created: bool, changes: dict[str, Any], reports_follow: bool = False
) -> None:
    """Called by ``RegistrySync._apply_record`` after it created or updated a package row.

    * The mirror sees the package pending for the first time (created as
      PendingManualApproval, or its status changed to it): ``enqueue_review_requested``.
    * Reviewed content changed: sign-offs whose fingerprint no longer matches are marked stale
      (one EXISTS query first, so packages nobody signed cost nothing more).
    * The package's stored review state is refreshed (its status, content, group or card), unless
      ``reports_follow``: the sync stores the package's reports next, in the same transaction, and
      ``package_reports_observed`` refreshes it then (one derivation instead of two).
    """
    if _became_pending(package, created=created, changes=changes):
        try:
            from registry_app.notifications.enqueue import enqueue_review_requested

            enqueue_review_requested(package.pk)
        except Exception:  # noqa: BLE001 - a notification problem must not stop the sync
            log.exception("could not schedule the review request for package %s", package.pk)
    if not created and REVIEWED_FIELDS.intersection(changes):
        _mark_stale_safely(package)
    _flag_outside_decision(package, created=created, changes=changes)
    if not reports_follow:
        _refresh_package(package, created=created)


def package_reports_observed(package: ModelPackage, *, created: bool = False) -> None:
    """The sync stored (re)fetched evaluation reports and their metrics: the fingerprint and the
    metric gates read them."""
    _refresh_package(package, created=created)


def _refresh_package(package: ModelPackage, *, created: bool = False) -> None:
    """A package the sync just wrote: its row refreshed, or, when it is plainly not under review
    (decided in the registry, or deleted), deleted without deriving anything; a package created
    just now, in this transaction, has no row to delete."""
    if package.approval_status == ApprovalStatus.PENDING and package.deleted_at is None:
        _refresh_safely([package.pk])
    elif not created:
        packages_vanished([package.pk])


def packages_vanished(package_ids: list[int]) -> None:
    """The sync marked these packages deleted (gone from the registry, or their group gone): they
    are no longer under review."""
    from registry_app.review.queue_state import review_state_forget

    try:
        with transaction.atomic():
            review_state_forget(package_ids)
    except Exception:  # noqa: BLE001 - the nightly check fixes the rows; the sync must go on
        log.exception("could not remove the review state of package(s) %s", package_ids[:20])


def group_observed(group_id: int) -> None:
    """A group's tags (which choose the policy and feed the queue's tag filter) or state changed."""
    from registry_app.review.queue_state import review_state_refresh_group

    try:
        with transaction.atomic():
            review_state_refresh_group(group_id)
    except Exception:  # noqa: BLE001 - the nightly check fixes the rows; the sync must go on
        log.exception("could not refresh the review state of group %s", group_id)


def card_link_observed(package_id: int) -> None:
    """The sync linked the package to another standalone card (or unlinked it)."""
    _refresh_safely([package_id])


def card_stored(card: ModelCard) -> None:
    """A standalone card's status or content was stored: the packages linked to it are re-evaluated
    (the policy's card check reads the status, the fingerprint the content)."""
    _refresh_safely(list(ModelPackage.objects.filter(model_card=card).values_list("pk", flat=True)))


def _refresh_safely(package_ids: list[int]) -> None:
    from registry_app.review.queue_state import review_state_refresh

    try:
        with transaction.atomic():
            review_state_refresh(package_ids)
    except Exception:  # noqa: BLE001 - the nightly check fixes the rows; the sync must go on
        log.exception("could not refresh the review state of package(s) %s", package_ids[:20])


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
    anyway, so a card change the sync does not report is still caught at the next sign-off.)
    The linked packages' review state is refreshed by ``card_stored``, which the sync calls after."""
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
