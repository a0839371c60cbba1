"""Marking sign-offs stale when the reviewed content changed (the sync saw it, or a push found it).

A stale sign-off never counts again (``state.signoff_views`` prefixes its fingerprint), even if
the content later changes back: it must be redone.
"""

from __future__ import annotations

from django.utils import timezone

from registry_app.audit import log as audit_log
from registry_app.models import ModelPackage, SignOff
from registry_app.review.outbox import flags_withdraw_push
from registry_app.review.policies import policy_for_group
from registry_app.review.queue_state import review_state_refresh
from registry_app.review.revalidation import revalidation_signoffs_mark_stale
from registry_app.review.state import package_fingerprint

__all__ = ["signoffs_mark_stale"]


def signoffs_mark_stale(
    package: ModelPackage, *, fingerprint: str | None = None, via: str = audit_log.Via.SYNC, acting_username: str = ""
) -> int:
    """Mark stale every current sign-off whose fingerprint is not ``fingerprint`` (default: the
    package's current one, from the mirror).

    Called by the sync hook when reviewed content changed, and by the push when the registry's
    content no longer matches what was reviewed. One SELECT and one UPDATE (plus the
    fingerprint's reads) and, when any became stale, an audit entry (``signoffs.marked_stale``)
    in the caller's transaction; returns how many sign-offs became stale.

    The role flags those sign-offs wrote to the registry no longer stand for the content: when the
    mirror shows any set on a pending package, a flags push withdraws them
    (``CustomerMetadataPropertiesToRemove``), sent after commit.
    """
    if fingerprint is None:
        fingerprint, _ = package_fingerprint(package)
    ids = list(
        SignOff.objects.filter(package=package, stale_at__isnull=True)
        .exclude(fingerprint=fingerprint)
        .values_list("pk", flat=True)
    )
    count = SignOff.objects.filter(pk__in=ids, stale_at__isnull=True).update(stale_at=timezone.now()) if ids else 0
    revalidation_signoffs_mark_stale(package, fingerprint)  # an open revalidation's sign-offs too (issue 15)
    if count:
        audit_log.audit_signoffs_stale(package, ids, fingerprint=fingerprint, via=via)
        flags_withdraw_push(package, policy_for_group(package.group), acting_username=acting_username)
        review_state_refresh([package.pk])  # the stored review state no longer counts them
    return count
