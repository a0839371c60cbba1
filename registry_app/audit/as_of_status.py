"""A package's approval-status history for the as-of answer: transitions from CloudTrail calls and mirror
observations, the status at a time, how an approval came about, and the rollback candidate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.db.models.lookups import In

from registry_app.audit.as_of_evidence import Evidence, Fact
from registry_app.audit.outside_list import OutsideMark, phase_of
from registry_app.audit.outside_rules import PUSH_EXPLAINS_WITHIN, STATUS_EVENT_NAMES, request_status
from registry_app.audit.values import iso
from registry_app.models import CloudTrailEvent, Decision, ModelPackage, OutsideDecision, PackageObservation, PushOutbox
from registry_app.models.registry import ApprovalStatus

__all__ = [
    "RollbackCandidate",
    "Transition",
    "approval_fact",
    "event_name_in",
    "observations_with",
    "rollback_candidate",
    "status_events",
    "status_events_queryset",
    "status_fact",
    "status_transitions",
]


@dataclass
class Transition:
    at: dt.datetime
    status: str
    before: str | None
    evidence: list[Evidence]
    actors: list[str] = field(default_factory=list)  # CloudTrail principals who made the change
    event_pks: list[int] = field(default_factory=list)  # their CloudTrailEvent rows


@dataclass
class RollbackCandidate:
    package: ModelPackage | None
    status_fact: Fact | None
    note: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "package_arn": self.package.arn if self.package else None,
            "version": self.package.version if self.package else None,
            "status": self.status_fact.as_dict() if self.status_fact else None,
            "note": self.note,
        }


def observations_with(package_ids: list[int], field_name: str) -> dict[int, list[PackageObservation]]:
    rows = (
        PackageObservation.objects.filter(package_id__in=package_ids, changes__has_key=field_name)
        .only("pk", "package_id", "observed_at", "change", "changes")
        .order_by("observed_at", "pk")
    )
    found: dict[int, list[PackageObservation]] = {}
    for row in rows:
        found.setdefault(row.package_id, []).append(row)
    return found


def event_name_in(names: Iterable[str]) -> Q:
    """``event_name IN names`` as a filter on the rows another index found, never as the index to
    walk: a few event names cover most of the table, and a planner without (or with sampled)
    statistics would otherwise walk ``ct_name_time`` through every call of that name. ``COALESCE``
    of a NOT NULL column changes no result; no index is on it."""
    return Q(In(Coalesce(F("event_name"), Value("")), list(names)))


def status_events_queryset(packages: list[ModelPackage]) -> QuerySet[CloudTrailEvent]:
    """The approval-status calls of ``packages`` (linked, or named by ARN), oldest first: found
    through ``ct_package_time`` + ``ct_resource_time`` (an OR of two index lookups)."""
    arns = [p.arn for p in packages]
    return (
        CloudTrailEvent.objects.filter(Q(package__in=packages) | Q(resource_name__in=arns))
        .filter(event_name_in(STATUS_EVENT_NAMES), error_code="")
        .order_by("event_time", "pk")
    )


def status_events(packages: list[ModelPackage]) -> dict[int, list[CloudTrailEvent]]:
    by_arn = {p.arn: p.pk for p in packages}
    rows = status_events_queryset(packages)
    found: dict[int, list[CloudTrailEvent]] = {}
    for row in rows:
        pk = row.package_id or by_arn.get(row.resource_name)
        if pk is not None and request_status(row.raw):
            found.setdefault(pk, []).append(row)
    return found


def status_transitions(observations: list[PackageObservation], events: list[CloudTrailEvent]) -> list[Transition]:
    """Approval-status changes from both sources, in time order, merging a CloudTrail call and the
    observation of its result into one transition (the call's time, both pieces of evidence)."""
    points: list[tuple[dt.datetime, int, str, str | None, Evidence, str, int | None]] = []
    for event in events:
        status = request_status(event.raw)
        who = event.actor_name or event.actor_arn or "unknown principal"
        points.append(
            (
                event.event_time,
                0,
                status,
                None,
                Evidence(f"cloudtrail:{event.event_id}", event.event_time, f"{event.event_name} by {who}"),
                who,
                event.pk,
            )
        )
    for obs in observations:
        pair = (obs.changes or {}).get("approval_status")
        if not isinstance(pair, list | tuple) or len(pair) != 2 or not pair[1]:
            continue
        note = (
            "first seen by the registry mirror"
            if obs.change == PackageObservation.Change.CREATED
            else "observed by the registry mirror"
        )
        points.append(
            (
                obs.observed_at,
                1,
                str(pair[1]),
                pair[0],
                Evidence(f"observation:{obs.pk}", obs.observed_at, note),
                "",
                None,
            )
        )
    points.sort(key=lambda p: (p[0], p[1]))
    transitions: list[Transition] = []
    for at, _, status, before, evidence, who, event_pk in points:
        if transitions and transitions[-1].status == status:
            transitions[-1].evidence.append(evidence)  # the same state seen again (call, then its observation)
            if event_pk is not None:
                transitions[-1].event_pks.append(event_pk)
            if who and who not in transitions[-1].actors:
                transitions[-1].actors.append(who)
            if transitions[-1].before is None and before is not None:
                transitions[-1].before = before
            continue
        transitions.append(
            Transition(
                at,
                status,
                before if before is not None else (transitions[-1].status if transitions else None),
                [evidence],
                [who] if who else [],
                [event_pk] if event_pk is not None else [],
            )
        )
    return transitions


def status_fact(
    package: ModelPackage, transitions: list[Transition], at: dt.datetime
) -> tuple[Fact, Transition | None]:
    """The approval status at ``at`` and the transition that set it (None when inferred or unknown)."""
    before_t = [t for t in transitions if t.at <= at]
    if before_t:
        current = before_t[-1]
        return Fact("approval status", current.status, list(current.evidence)), current
    after_t = [t for t in transitions if t.at > at]
    if after_t and after_t[0].before:
        first = after_t[0]
        return (
            Fact(
                "approval status",
                str(first.before),
                list(first.evidence),
                missing="" if first.before else "no status before the first recorded change",
            ),
            None,
        )
    if package.created_at and package.created_at > at:
        return Fact(
            "approval status",
            "(package not yet registered)",
            [Evidence(f"package:{package.arn}", package.created_at, "CreationTime")],
        ), None
    if not transitions and package.first_seen_at <= at:
        return (
            Fact(
                "approval status",
                package.approval_status or "(unknown)",
                [
                    Evidence(
                        f"package:{package.arn}",
                        package.last_synced_at,
                        "current mirror record; no status change recorded",
                    )
                ],
            ),
            None,
        )
    seen = f"the registry mirror first saw this package at {iso(package.first_seen_at)}"
    return (
        Fact(
            "approval status",
            "unknown",
            [],
            missing=f"No status evidence at this time: {seen} and no CloudTrail UpdateModelPackage call "
            "before then has been ingested.",
        ),
        None,
    )


def approval_fact(
    transitions: list[Transition],
    at: dt.datetime,
    decisions: list[Decision],
    pushes: list[PushOutbox],
    outside: list[OutsideDecision],
    package: ModelPackage | None = None,
) -> Fact:
    """How the last approval by ``at`` came about: through the dashboard (its push), or outside it, then
    marked before governance / while governed and linked to its entry on the bypasses page (``package``
    given, with its group) in the same words that page uses."""
    approved = [t for t in transitions if t.at <= at and t.status == ApprovalStatus.APPROVED]
    if not approved:
        return Fact("approval", "not approved at this time", [])
    last = approved[-1]
    evidence = list(last.evidence)
    missing = ""
    mark = None
    if last.actors:
        how = f"by {', '.join(last.actors)} (UpdateModelPackage; no dashboard push explains it)"
        if package is not None and last.event_pks:
            mark = _call_mark(package, last, outside)
    else:
        how = "(seen by the registry mirror)"
        missing = "Who approved it is not in the ingested CloudTrail."
    window_start = last.at - PUSH_EXPLAINS_WITHIN
    sent = [
        p
        for p in pushes
        if p.target_status == ApprovalStatus.APPROVED and p.sent_at and window_start <= p.sent_at <= at
    ]
    flagged = [o for o in outside if o.to_status == ApprovalStatus.APPROVED and window_start <= o.observed_at <= at]
    if sent:
        push = sent[-1]
        evidence.append(Evidence(f"push:{push.pk}", push.sent_at, "dashboard push"))
        if push.decision_id:
            evidence.append(Evidence(f"decision:{push.decision_id}", None, "dashboard decision"))
        how = "through the governance dashboard" + (
            f" on behalf of {push.acting_username}" if push.acting_username else ""
        )
        missing = ""
        mark = None
    if flagged:
        row = flagged[-1]
        evidence.append(Evidence(f"outside_decision:{row.pk}", row.observed_at, "flagged: set outside the dashboard"))
        how = f"outside the dashboard{f' by {row.actor_name}' if row.actor_name else ''}"
        if package is not None:
            mark = OutsideMark(
                phase_of(row.changed_at or row.observed_at, package), f"outside-{row.pk}", row.observed_at
            )
    if mark is not None:
        who = f", by {', '.join(last.actors)}" if last.actors else ""
        how = f"{mark.label[0].lower()}{mark.label[1:]}{who} ({mark.note})"
        link, text = mark.url, "Outside-decisions entry"
        return Fact("approval", f"Approved at {iso(last.at)} {how}", evidence, missing, link, text)
    return Fact("approval", f"Approved at {iso(last.at)} {how}", evidence, missing)


def _call_mark(package: ModelPackage, last: Transition, outside: list[OutsideDecision]) -> OutsideMark:
    """The bypasses entry of an approval CloudTrail recorded: the flagged row that claims the call, else
    the call itself."""
    claimed = next((o for o in outside if o.event_id in last.event_pks), None)
    if claimed is not None:
        return OutsideMark(
            phase_of(claimed.changed_at or claimed.observed_at, package), f"outside-{claimed.pk}", claimed.observed_at
        )
    return OutsideMark(phase_of(last.at, package), f"cloudtrail-{last.event_pks[-1]}", last.at)


def rollback_candidate(package: ModelPackage, at: dt.datetime, *, depth: int = 20) -> RollbackCandidate:
    """The highest earlier version of the same group that was Approved at ``at`` (three queries)."""
    earlier = list(
        ModelPackage.objects.filter(group_id=package.group_id, version__lt=package.version)
        .select_related("group")
        .defer("raw", "inference_specification", "model_metrics", "embedded_card_content")
        .order_by("-version")[:depth]
    )
    if not earlier:
        return RollbackCandidate(None, None, f"No version before v{package.version} in {package.group.name}.")
    observations = observations_with([p.pk for p in earlier], "approval_status")
    events = status_events(earlier)
    for candidate in earlier:
        transitions = status_transitions(observations.get(candidate.pk, []), events.get(candidate.pk, []))
        fact, _ = status_fact(candidate, transitions, at)
        if fact.value == ApprovalStatus.APPROVED and candidate.deleted_at is None:
            return RollbackCandidate(candidate, fact, f"v{candidate.version} was Approved at this time")
    checked = f"v{earlier[-1].version}–v{earlier[0].version}" if len(earlier) > 1 else f"v{earlier[0].version}"
    return RollbackCandidate(None, None, f"No earlier version was Approved at this time (checked {checked}).")
