"""Demo data for periodic revalidation (issue 15): two approved models due for revalidation and one overdue.

The demo's ``high-risk`` policy (``create_demo_policies``) revalidates every 30 days with 30 days' grace.
Its subject versions (``credit-default-xgb`` v5 and ``fraud-detector`` v3 and v4, all serving on
endpoints) were approved in the registry 39, 89 and 48 days before the demo starts (two days after their
registration, as the seed's CloudTrail history says), but the mirror first saw them Approved at the
demo's first sync, minutes ago. The demo clock therefore moves the observation that first saw each of
them Approved back to its approval in the registry (``package.created_at`` + 2 days 1 hour, the seed's
``decided_at``). That makes two of them due and one overdue; nothing else is touched.

Run after the first sync (``manage.py stage_demo_scenes`` calls it). Idempotent.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from registry_app.models import ModelPackage, PackageObservation
from registry_app.models.registry import ApprovalStatus
from registry_app.review.revalidation_clock import NOT_SUBJECT
from registry_app.review.revalidation_read import revalidation_clocks

__all__ = ["APPROVED_AFTER_REGISTRATION", "seed_revalidation_demo"]

# The seed approves a version two days and an hour after registering it (demo_seed.decided_at).
APPROVED_AFTER_REGISTRATION = dt.timedelta(days=2, hours=1)


def _registry_approval(package: ModelPackage, now: dt.datetime) -> dt.datetime | None:
    if package.created_at is None:
        return None
    return min(package.created_at + APPROVED_AFTER_REGISTRATION, now - dt.timedelta(hours=1))


def seed_revalidation_demo(*, now: dt.datetime | None = None) -> list[str]:
    """Back-date the mirror's first Approved observation of every version subject to a revalidating
    policy to its approval in the registry. One transaction; returns a summary line per version."""
    now = now or timezone.now()
    approved = list(
        ModelPackage.objects.filter(approval_status=ApprovalStatus.APPROVED, deleted_at__isnull=True)
        .select_related("group")
        .order_by("group__name", "version")
    )
    lines: list[str] = []
    with transaction.atomic():
        for package in approved:
            clock = revalidation_clocks([package], now=now)[package.pk]
            approved_at = _registry_approval(package, now)
            if clock.every_days is None or clock.state == NOT_SUBJECT or approved_at is None:
                continue
            seen = [
                o
                for o in PackageObservation.objects.filter(package=package, changes__has_key="approval_status")
                if (o.changes.get("approval_status") or [None, None])[-1] == ApprovalStatus.APPROVED
            ]
            if seen and seen[0].observed_at > approved_at:
                PackageObservation.objects.filter(pk=seen[0].pk).update(observed_at=approved_at)
            state = revalidation_clocks([package], now=now)[package.pk]
            lines.append(f"{package.group.name} v{package.version}: {state.label.lower()}")
    return lines
