"""The revalidation clock (issue 15): which approved versions must be re-reviewed, and when (pure).

A policy's ``revalidate_every_days`` makes an approved version "due" that many days after its
*anchor* (the later of its approval and its last passed revalidation) and "overdue" after the
policy's ``revalidation_grace_days`` more. Only versions that matter are subject: an Approved
version serving on an endpoint, or, when no version of its group serves, the group's latest
Approved version. No I/O: callers pass the facts and ``now`` (tests freeze time by passing it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "CURRENT",
    "DUE",
    "NOT_SUBJECT",
    "OVERDUE",
    "RevalidationClock",
    "VersionFacts",
    "clock_state",
    "subject_ids",
]

NOT_SUBJECT = "not_subject"
CURRENT = "current"
DUE = "due"
OVERDUE = "overdue"
STATE_LABELS = {NOT_SUBJECT: "Not subject", CURRENT: "Current", DUE: "Revalidation due", OVERDUE: "Overdue"}


@dataclass(frozen=True)
class VersionFacts:
    """What the clock needs of one version of a group."""

    id: int
    group_id: int
    version: int
    approved: bool  # Approved in the registry (and not deleted)
    deployed: bool  # serving on a live endpoint in the mirror


def subject_ids(versions: Iterable[VersionFacts]) -> set[int]:
    """The versions subject to revalidation: per group, the Approved versions that are deployed, or
    when none of the group's versions is deployed, its latest Approved version."""
    by_group: dict[int, list[VersionFacts]] = {}
    for v in versions:
        by_group.setdefault(v.group_id, []).append(v)
    subject: set[int] = set()
    for group in by_group.values():
        deployed_approved = {v.id for v in group if v.approved and v.deployed}
        if deployed_approved:
            subject |= deployed_approved
        elif not any(v.deployed for v in group):
            approved = [v for v in group if v.approved]
            if approved:
                subject.add(max(approved, key=lambda v: v.version).id)
    return subject


@dataclass(frozen=True)
class RevalidationClock:
    """Where one version stands. ``due_at`` / ``overdue_at`` are None when it is not subject."""

    state: str
    every_days: int | None = None
    grace_days: int = 0
    approved_at: dt.datetime | None = None
    last_revalidated_at: dt.datetime | None = None
    anchor: dt.datetime | None = None
    due_at: dt.datetime | None = None
    overdue_at: dt.datetime | None = None

    @property
    def label(self) -> str:
        return STATE_LABELS[self.state]

    @property
    def is_due(self) -> bool:
        """Due or overdue: revalidation sign-offs are open."""
        return self.state in (DUE, OVERDUE)

    @property
    def within_period(self) -> bool:
        """Within its revalidation period (not past the due date), or not subject at all."""
        return self.state in (NOT_SUBJECT, CURRENT)


def clock_state(
    *,
    subject: bool,
    every_days: int | None,
    grace_days: int,
    approved_at: dt.datetime | None,
    last_passed_at: dt.datetime | None,
    now: dt.datetime,
) -> RevalidationClock:
    """The clock of one version at ``now``.

    Not subject: the version is not subject (``subject_ids``), the policy never revalidates
    (``every_days`` None), or no approval time is known. Otherwise the anchor is the later of
    ``approved_at`` and ``last_passed_at``; ``due_at = anchor + every_days``, overdue from
    ``due_at + grace_days``.
    """
    if not subject or every_days is None or approved_at is None:
        return RevalidationClock(
            NOT_SUBJECT, every_days, grace_days, approved_at=approved_at, last_revalidated_at=last_passed_at
        )
    anchor = max(approved_at, last_passed_at) if last_passed_at is not None else approved_at
    due_at = anchor + dt.timedelta(days=every_days)
    overdue_at = due_at + dt.timedelta(days=grace_days)
    state = OVERDUE if now >= overdue_at else DUE if now >= due_at else CURRENT
    return RevalidationClock(state, every_days, grace_days, approved_at, last_passed_at, anchor, due_at, overdue_at)
