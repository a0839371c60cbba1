"""What the stored review state of packages must be, computed from scratch.

``derive_rows(ids)`` loads every input of ``review.state.verdict`` for many packages at once and
returns, per package under review, the ``ReviewRow`` the ``ReviewState`` table must hold. A package
is under review while it is live (package and group) and pending in the registry; a decision of
the dashboard still on its way keeps it there (its outcome says what was decided).

Constant queries, whatever the number of packages, sign-offs or reports: the policies, the
packages (with card), their groups (with source), then sign-offs, report digests, metrics and
decision pushes, policy exceptions and open blocking findings as plain rows (9; 2 when none of
the packages is under review). Each
row is ``state.package_fingerprint``, ``state.effective_status`` and ``state.verdict`` on those
rows: the computation of the review page and the sign-off service.

Reads only: ``review.queue_state`` stores the rows, the nightly check compares them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Prefetch, Q, QuerySet

from registry_app.models import (
    ApprovalPolicy,
    EvaluationReport,
    Metric,
    ModelPackage,
    ModelPackageGroup,
    PolicyException,
    PushOutbox,
    SignOff,
)
from registry_app.models.registry import ApprovalStatus
from registry_app.permissions import principal_names
from registry_app.review.finding_list import blocking_by_package
from registry_app.review.policies import resolve_policy
from registry_app.review.policy import MetricObservation, PolicySpec, SignOffView
from registry_app.review.policy.basics import DUE_SOON_FRACTION
from registry_app.review.state import (
    PENDING_OUTCOME,
    current_signer_ids,
    effective_status,
    exception_gates,
    package_fingerprint,
    signoff_view,
    verdict,
)
from registry_app.review.status import BLOCKED_SEP

__all__ = [
    "ReviewRow",
    "RoleRow",
    "derive_rows",
    "policy_digest",
    "queue_key",
    "registrant_token",
    "signer_token",
    "under_review",
]

# Fingerprinting reads the reviewed JSON columns; these it does not need.
_DEFERRED = ("raw", "last_modified_by", "model_card__content", "model_card__content_error")
NAME_SEP = "\n"  # no username holds one (Django's validator), so "\nname\n" matches whole names only
ID_SEP = "|"


@dataclass(frozen=True)
class RoleRow:
    role: str
    needed: int
    approvals: int
    missing: bool  # approvals still missing while the outcome is Pending: a holder of the role may sign


@dataclass(frozen=True)
class ReviewRow:
    """The ``ReviewState`` row (and its ``ReviewStateRole`` rows) of one package under review."""

    package_id: int
    group_id: int
    source_name: str
    group_name: str
    group_tags: dict[str, Any]
    version: int
    created_at: dt.datetime | None
    waiting_since: dt.datetime
    queue_key: str
    registrants: str
    policy_name: str
    policy_digest: str
    sla_hours: int
    due_soon_at: dt.datetime
    due_at: dt.datetime
    fingerprint: str
    status: str
    outcome: str
    missing_roles: tuple[str, ...]
    signers: str
    blocked_by: str
    push_state: str
    roles: tuple[RoleRow, ...]

    def state_fields(self) -> dict[str, Any]:
        """The ``ReviewState`` column values (``package_id`` included, role rows excluded)."""
        fields = asdict(self)
        fields.pop("roles")
        fields["missing_roles"] = list(self.missing_roles)
        return fields


# --------------------------------------------------------------------------------------------- tokens


def _stamp(moment: dt.datetime) -> str:
    """20 digits that sort as the moment does (UTC, microseconds)."""
    m = moment.astimezone(dt.UTC)
    return f"{m.year:04d}{m.month:02d}{m.day:02d}{m.hour:02d}{m.minute:02d}{m.second:02d}{m.microsecond:06d}"


def queue_key(created_at: dt.datetime | None, first_seen_at: dt.datetime, package_id: int) -> str:
    """Oldest first, as the queue always listed: CreationTime (undated packages after every dated
    one), then when the mirror first saw the package, then its id. Unique; digits only."""
    undated = created_at is None
    return f"{int(undated)}{_stamp(first_seen_at if undated else created_at)}{_stamp(first_seen_at)}{package_id:012d}"


def registrant_token(username: str) -> str:
    """What ``ReviewState.registrants`` contains when ``username`` registered the package."""
    return f"{NAME_SEP}{username.casefold()}{NAME_SEP}"


def signer_token(user_id: int) -> str:
    """What ``ReviewState.signers`` contains when ``user_id`` holds a current sign-off."""
    return f"{ID_SEP}{user_id}{ID_SEP}"


def _registrants(created_by: Any) -> str:
    # As state.is_registrant compares: every CreatedBy name, casefolded. A name holding the
    # separator can never equal a username, so leaving it out changes no comparison.
    names = sorted({n.casefold() for n in principal_names(created_by) if NAME_SEP not in n})
    return NAME_SEP + "".join(f"{n}{NAME_SEP}" for n in names)


def _signers(ids: Iterable[int]) -> str:
    return ID_SEP + "".join(f"{i}{ID_SEP}" for i in sorted(ids))


def policy_digest(policy: PolicySpec) -> str:
    """Identifies the policy's content (the role order counts: it orders the missing roles)."""
    text = json.dumps(policy.to_dict(), separators=(",", ":"), default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


# --------------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class _ReportDigest:
    """What ``package_fingerprint`` reads of a report (``values_list`` rows: no model instances)."""

    slot: str
    sha256: str
    content_digest: str
    s3_uri: str


@dataclass(frozen=True)
class _DecisionPush:
    """What ``effective_status`` reads of an undelivered decision push."""

    kind: str
    state: str
    target_status: str
    created_at: dt.datetime


def under_review() -> Q:
    """Packages under review: live (package and group) and pending in the registry."""
    return Q(approval_status=ApprovalStatus.PENDING, deleted_at__isnull=True, group__deleted_at__isnull=True)


def _load(packages: QuerySet[ModelPackage]) -> list[ModelPackage]:
    """The packages with their inputs attached (see the module docstring for the queries)."""
    loaded = list(
        packages.select_related("model_card")
        .defer(*_DEFERRED)
        .prefetch_related(Prefetch("group", queryset=ModelPackageGroup.objects.select_related("source")))
    )
    if not loaded:
        return []
    ids = [p.pk for p in loaded]
    views: dict[int, list[SignOffView]] = defaultdict(list)
    username = f"user__{get_user_model().USERNAME_FIELD}"
    for package_id, *row in (
        SignOff.objects.filter(package__in=ids, withdrawn_at__isnull=True)
        .order_by("created_at", "pk")
        .values_list(
            "package_id", "user_id", username, "role", "decision", "fingerprint", "stale_at", "created_at", "comment"
        )
    ):
        views[package_id].append(signoff_view(*row))
    reports: dict[int, list[_ReportDigest]] = defaultdict(list)
    for package_id, *digest in (
        EvaluationReport.objects.filter(package__in=ids)
        .order_by("slot")
        .values_list("package_id", "slot", "sha256", "content_digest", "s3_uri")
    ):
        reports[package_id].append(_ReportDigest(*digest))
    metrics: dict[int, list[MetricObservation]] = defaultdict(list)
    for package_id, name, value, facet, kind in (
        Metric.objects.filter(package__in=ids)
        .order_by("pk")
        .values_list("package_id", "name", "value", "facet", "kind")
    ):
        metrics[package_id].append(MetricObservation(name=name, value=value, facet=facet, kind=kind))
    pushes: dict[int, list[_DecisionPush]] = defaultdict(list)
    # Every decision push (effective_status keeps the undelivered ones; the newest one's state is shown).
    for package_id, *push in (
        PushOutbox.objects.filter(package__in=ids, kind=PushOutbox.Kind.DECISION)
        .exclude(target_status="")
        .values_list("package_id", "kind", "state", "target_status", "created_at")
    ):
        pushes[package_id].append(_DecisionPush(*push))
    exceptions: dict[int, list[tuple[str, Any]]] = defaultdict(list)
    for package_id, fingerprint, gates in PolicyException.objects.filter(package__in=ids).values_list(
        "package_id", "fingerprint", "gates"
    ):
        exceptions[package_id].append((fingerprint, gates))
    findings = blocking_by_package(loaded)
    for package in loaded:
        package.signoff_views = views[package.pk]  # type: ignore[attr-defined]
        package.metric_observations = metrics[package.pk]  # type: ignore[attr-defined]
        package.undelivered_decisions = pushes[package.pk]  # type: ignore[attr-defined]
        package.policy_exceptions = exceptions[package.pk]  # type: ignore[attr-defined]
        package.blocking_findings = findings.get(package.pk, [])  # type: ignore[attr-defined]
        # package_fingerprint reads ``package.reports.all()``, which serves a filled prefetch cache.
        package.__dict__.setdefault("_prefetched_objects_cache", {})["reports"] = reports[package.pk]
    return loaded


# --------------------------------------------------------------------------------------------- rows


def _row(package: ModelPackage, policy: PolicySpec, digest: str) -> ReviewRow:
    views: list[SignOffView] = package.signoff_views  # type: ignore[attr-defined]
    fingerprint, _ = package_fingerprint(package, policy=policy)
    state = verdict(
        package,
        policy=policy,
        signoffs=views,
        metrics=package.metric_observations,  # type: ignore[attr-defined]
        fingerprint=fingerprint,
        status=effective_status(package, package.undelivered_decisions),  # type: ignore[attr-defined]
        waived=exception_gates(package.policy_exceptions, fingerprint),  # type: ignore[attr-defined]
        findings=getattr(package, "blocking_findings", ()),
    )
    decisions: list[_DecisionPush] = package.undelivered_decisions  # type: ignore[attr-defined]
    newest = max(decisions, key=lambda p: p.created_at) if decisions else None
    missing = set(state.missing_roles)
    waiting_since = package.created_at or package.first_seen_at
    group = package.group
    return ReviewRow(
        package_id=package.pk,
        group_id=group.pk,
        source_name=group.source.name,
        group_name=group.name,
        group_tags=group.tags if isinstance(group.tags, dict) else {},
        version=package.version,
        created_at=package.created_at,
        waiting_since=waiting_since,
        queue_key=queue_key(package.created_at, package.first_seen_at, package.pk),
        registrants=_registrants(package.created_by),
        policy_name=policy.name,
        policy_digest=digest,
        sla_hours=policy.sla_hours,
        due_soon_at=waiting_since + dt.timedelta(hours=DUE_SOON_FRACTION * policy.sla_hours),
        due_at=waiting_since + dt.timedelta(hours=policy.sla_hours),
        fingerprint=fingerprint,
        status=state.status,
        outcome=state.outcome,
        missing_roles=tuple(state.missing_roles),
        signers=_signers(current_signer_ids(state)),
        blocked_by=BLOCKED_SEP.join(state.blocked_by)[:255],
        # Only "conflict" is stored: the push service refreshes the row when a push conflicts, delivers
        # or is retried, not when a worker claims it (pending -> sending), so finer states would drift.
        push_state=PushOutbox.State.CONFLICT
        if newest is not None and newest.state == PushOutbox.State.CONFLICT
        else "",
        roles=tuple(
            RoleRow(r.role, r.needed, len(r.approvals), r.role in missing and state.outcome == PENDING_OUTCOME)
            for r in state.result.roles
        ),
    )


def derive_rows(
    package_ids: Sequence[int] | None = None, *, policies: list[ApprovalPolicy] | None = None
) -> dict[int, ReviewRow]:
    """``{package id: row}`` for the packages among ``package_ids`` (every package when None) that
    are under review now; the others have no row. ``policies`` saves their query."""
    if policies is None:
        policies = list(ApprovalPolicy.objects.all())
    packages = ModelPackage.objects.filter(under_review())
    if package_ids is not None:
        if not package_ids:
            return {}
        packages = packages.filter(pk__in=list(package_ids))
    resolved: dict[int, tuple[PolicySpec, str]] = {}
    rows: dict[int, ReviewRow] = {}
    for package in _load(packages):
        if package.group_id not in resolved:
            policy = resolve_policy(policies, package.group)
            resolved[package.group_id] = (policy, policy_digest(policy))
        rows[package.pk] = _row(package, *resolved[package.group_id])
    return rows
