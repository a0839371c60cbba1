"""Reads of the revalidation clock (issue 15): the facts of ``revalidation_clock`` from rows.

``revalidation_clocks`` answers for many versions at once in a fixed number of queries (the
queue, the group page, the metrics gauge and the reminders use it); ``revalidation_clock_at``
answers for one version at a past instant from what was known then (the as-of page).
Reads only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db.models import Exists, Max, OuterRef, QuerySet
from django.utils import timezone

from registry_app.models import (
    ApprovalPolicy,
    Decision,
    EndpointVariant,
    ModelPackage,
    ModelPackageGroup,
    PackageObservation,
    Revalidation,
)
from registry_app.models.registry import ApprovalStatus
from registry_app.review.policies import resolve_policy
from registry_app.review.policy import PolicySpec
from registry_app.review.policy_versions import policy_at
from registry_app.review.revalidation_clock import (
    DUE,
    OVERDUE,
    RevalidationClock,
    VersionFacts,
    clock_state,
    subject_ids,
)

__all__ = [
    "approval_times",
    "due_clocks",
    "group_policies",
    "last_passed_times",
    "overdue_count",
    "revalidation_clock_at",
    "revalidation_clocks",
    "subject_versions",
]


def _deployed() -> Exists:
    return Exists(EndpointVariant.objects.filter(package_id=OuterRef("pk"), endpoint__deleted_at__isnull=True))


def subject_versions(group_ids: Iterable[int] | QuerySet[Any]) -> tuple[set[int], dict[int, VersionFacts]]:
    """The subject versions of these groups (ids, or a ``values("group_id")`` queryset, which runs as a
    subquery) and the facts of each live version (1 query)."""
    groups = group_ids if isinstance(group_ids, QuerySet) else list(group_ids)
    rows = (
        ModelPackage.objects.filter(group_id__in=groups, deleted_at__isnull=True)
        .annotate(is_deployed=_deployed())
        .values_list("pk", "group_id", "version", "approval_status", "is_deployed")
    )
    facts = {
        pk: VersionFacts(pk, group_id, version, status == ApprovalStatus.APPROVED, bool(deployed))
        for pk, group_id, version, status, deployed in rows
    }
    return subject_ids(facts.values()), facts


def approval_times(package_ids: Iterable[int], *, at: dt.datetime | None = None) -> dict[int, dt.datetime]:
    """When each version was approved (known by ``at``): the dashboard's newest Decision approving it,
    else when the mirror saw its status become Approved (its newest such observation). 2 queries."""
    ids = list(package_ids)
    decisions = Decision.objects.filter(package_id__in=ids, status=ApprovalStatus.APPROVED)
    observations = PackageObservation.objects.filter(package_id__in=ids, changes__has_key="approval_status")
    if at is not None:
        decisions = decisions.filter(created_at__lte=at)
        observations = observations.filter(observed_at__lte=at)
    decided: dict[int, dt.datetime] = dict(
        decisions.values("package_id").annotate(at=Max("created_at")).values_list("package_id", "at")
    )
    seen: dict[int, dt.datetime] = {}
    for package_id, observed_at, changes in observations.values_list("package_id", "observed_at", "changes"):
        change = changes.get("approval_status") if isinstance(changes, dict) else None
        became_approved = isinstance(change, list) and len(change) == 2 and change[1] == ApprovalStatus.APPROVED
        if became_approved and (package_id not in seen or observed_at > seen[package_id]):
            seen[package_id] = observed_at
    return seen | decided  # a decision of the dashboard beats what the mirror saw


def last_passed_times(package_ids: Iterable[int], *, at: dt.datetime | None = None) -> dict[int, dt.datetime]:
    """When each version last passed a revalidation (completed by ``at``). 1 query."""
    rows = Revalidation.objects.filter(package_id__in=list(package_ids), outcome=Revalidation.Outcome.PASSED)
    if at is not None:
        rows = rows.filter(completed_at__lte=at)
    return dict(rows.values("package_id").annotate(at=Max("completed_at")).values_list("package_id", "at"))


def group_policies(groups: dict[int, ModelPackageGroup]) -> dict[int, PolicySpec]:
    """The policy of each group (``{group id: group}``), 1 query."""
    rows = list(ApprovalPolicy.objects.all())
    return {gid: resolve_policy(rows, group) for gid, group in groups.items()}


def revalidation_clocks(
    packages: Iterable[ModelPackage],
    *,
    now: dt.datetime | None = None,
    policies: dict[int, PolicySpec] | None = None,
    subject: set[int] | None = None,
) -> dict[int, RevalidationClock]:
    """The clock of each package at ``now`` (default: the present).

    Queries: the groups (unless selected with the packages), their versions with their deployments,
    the policies (unless given, ``{group id: policy}``), decisions, observations and passed
    revalidations (at most 6, whatever the number of packages and groups). ``subject``: the subject
    versions of the packages' groups when the caller has them (``subject_versions``), saving that query.
    """
    packages = list(packages)
    if not packages:
        return {}
    now = now or timezone.now()
    cached = all(ModelPackage.group.is_cached(p) for p in packages)  # type: ignore[attr-defined]
    groups = {p.group_id: p.group for p in packages} if cached else _groups(packages)
    if subject is None:
        subject, _facts = subject_versions(groups)
    if policies is None or not set(groups) <= set(policies):
        policies = group_policies(groups)
    ids = [p.pk for p in packages if p.pk in subject]
    approved = approval_times(ids)  # run even when empty: a page's query count must not depend on its data
    passed = last_passed_times(ids)
    clocks: dict[int, RevalidationClock] = {}
    for p in packages:
        policy = policies[p.group_id]
        clocks[p.pk] = clock_state(
            subject=p.pk in subject,
            every_days=policy.revalidate_every_days,
            grace_days=policy.revalidation_grace_days,
            approved_at=approved.get(p.pk),
            last_passed_at=passed.get(p.pk),
            now=now,
        )
    return clocks


def _groups(packages: list[ModelPackage]) -> dict[int, ModelPackageGroup]:
    return ModelPackageGroup.objects.in_bulk({p.group_id for p in packages})


def due_clocks(
    *, now: dt.datetime | None = None, candidates: QuerySet[ModelPackage] | None = None
) -> list[tuple[ModelPackage, RevalidationClock]]:
    """Every live version due or overdue for revalidation (among ``candidates``, default all), most
    overdue first. 6 queries.

    Only subject versions can be due (per group, the deployed approved ones, else the latest
    approved), so they are found first from light rows, and only they are loaded as instances: with
    10,000 packages in 200 groups that is ~200 instances, not every approved version."""
    rows = ModelPackage.objects.all() if candidates is None else candidates
    live = rows.filter(approval_status=ApprovalStatus.APPROVED, deleted_at__isnull=True, group__deleted_at__isnull=True)
    subject, _facts = subject_versions(live.values("group_id"))
    approved = list(
        live.filter(pk__in=subject)
        .select_related("group", "source")
        .only("pk", "version", "group__name", "group__tags", "group__deleted_at", "source__name", "approval_status")
    )
    clocks = revalidation_clocks(approved, now=now, subject=subject)
    due = [(p, clocks[p.pk]) for p in approved if clocks[p.pk].state in (DUE, OVERDUE)]
    return sorted(due, key=lambda pc: (pc[1].due_at, pc[0].pk))


def overdue_count(*, now: dt.datetime | None = None) -> int:
    """How many versions are past their revalidation grace (the ``/metrics`` gauge)."""
    return sum(1 for _, clock in due_clocks(now=now) if clock.state == OVERDUE)


def revalidation_clock_at(package: ModelPackage, at: dt.datetime, *, serving: bool = True) -> RevalidationClock:
    """The clock of ``package`` at the past instant ``at`` from what the dashboard knew then: the
    approvals and passed revalidations recorded by ``at``. ``serving``: the version served at ``at``
    (the as-of answer's question), so it was subject. The policy is the version in force at ``at``
    (``policy_versions.policy_at``). 3 queries."""
    policy, _ = policy_at(package.group, at)
    return clock_state(
        subject=serving,
        every_days=policy.revalidate_every_days,
        grace_days=policy.revalidation_grace_days,
        approved_at=approval_times([package.pk], at=at).get(package.pk),
        last_passed_at=last_passed_times([package.pk], at=at).get(package.pk),
        now=at,
    )
