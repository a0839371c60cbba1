"""The review panel of a package page: policy verdict, sign-offs, what I may do, and comparisons.

``review_state(package, user)`` is a read-only selector with a constant number of queries,
whatever the number of sign-offs, pushes, versions or metrics (``tests/review`` holds it to
that): the policy rows, the package's reports and metrics, its sign-offs (with users), its
pushes, the registrant lookup, the user's roles (cached per request), the baseline version with
its metrics, and the previous version.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch

from registry_app.evidence.numbers import value_text
from registry_app.mirror.cards import card_content
from registry_app.mirror.reports.directions import better
from registry_app.models import (
    Decision,
    EvaluationReport,
    Metric,
    ModelPackage,
    PolicyException,
    PolicyVersion,
    PushOutbox,
    SignOff,
)
from registry_app.models.registry import REPRODUCIBILITY_KEYS, ApprovalStatus
from registry_app.permissions import COMPLIANCE_ROLE, can_retry_push, can_revoke, is_active_user, user_roles
from registry_app.review.finding_list import applicable_findings, blocking_of, can_raise, conditions_of
from registry_app.review.policy import DEFAULT_ROLE_FLAGS, GateResult, MetricObservation, PolicyResult, PolicySpec
from registry_app.review.policy_versions import decided_under, policy_rows, resolve_version, version_label
from registry_app.review.state import (
    effective_status,
    exception_gates,
    package_fingerprint,
    signable_roles,
    signoff_views,
    verdict,
)
from registry_app.review.status import VersionStatus, status_of_review

__all__ = ["DiffRow", "MetricComparison", "ReviewState", "review_state"]

# Columns the comparison versions never need.
_DEFERRED = ("raw", "model_metrics", "embedded_card_status")


@dataclass(frozen=True)
class MetricComparison:
    name: str
    facet: str
    value: float | None
    baseline: float | None
    delta: float | None
    better: bool | None  # None: unknown direction, no baseline, or equally good
    kind: str = ""
    stage: str = ""


@dataclass(frozen=True)
class DiffRow:
    label: str
    before: str
    after: str


@dataclass
class ReviewState:
    policy: PolicySpec
    result: PolicyResult
    fingerprint: str
    signoffs: list[SignOff]  # each with .is_stale
    signable_roles: list[str]
    cannot_sign_reason: str
    pushes: list[PushOutbox]  # newest first, each with .can_retry
    latest_push: PushOutbox | None
    can_revoke: bool
    can_retry_push: bool
    metrics_vs_approved: list[MetricComparison] = field(default_factory=list)
    baseline_package: ModelPackage | None = None
    previous_package: ModelPackage | None = None
    diff_from_previous: list[DiffRow] = field(default_factory=list)
    effective_status: str = ""  # the status once the dashboard's own pending decision is delivered
    status: VersionStatus | None = None  # the one display status (review.status): banner, badges, polling
    blocking: list[GateResult] = field(default_factory=list)  # failing gates no exception waives
    exceptions: list[PolicyException] = field(default_factory=list)  # valid for the current content
    can_record_exception: bool = False  # compliance, on a version blocked by a gate
    approvals_blocked: bool = False  # an approval would be refused: the form offers Reject only
    withdrawable: list[int] = field(default_factory=list)  # ids of my own sign-offs I may withdraw
    version: PolicyVersion | None = None  # the policy's version in force (None: the built-in default)
    decision: Decision | None = None  # the newest decision the dashboard pushed, with its policy version

    @property
    def version_label(self) -> str:
        return version_label(self.version)

    @property
    def decided_under(self) -> str:
        """``approved under high-risk v3`` for the newest decision, else empty."""
        return decided_under(self.decision) if self.decision is not None else ""

    findings: list[Any] = field(default_factory=list)  # Finding rows applying (finding_list.applicable_findings)
    blocking_findings: list[Any] = field(default_factory=list)  # open blocking ones (BlockingFinding)
    conditions: list[Any] = field(default_factory=list)  # the approval's conditions (Finding rows)
    can_raise_finding: bool = False

    @property
    def is_open(self) -> bool:
        """Still under review: role progress ("1 more needed") means something."""
        return self.status is None or self.status.open

    @property
    def current_signoffs(self) -> list[SignOff]:
        return [s for s in self.signoffs if not getattr(s, "is_stale", False)]

    @property
    def stale_signoffs(self) -> list[SignOff]:
        return [s for s in self.signoffs if getattr(s, "is_stale", False)]


# --------------------------------------------------------------------------------------------- selector


def review_state(package: ModelPackage, user: Any) -> ReviewState:
    """Everything the review panel shows for ``package`` and ``user`` (read only)."""
    group = package.group
    policy, version = resolve_version(policy_rows(), group)
    reports = EvaluationReport.objects.filter(package=package).only("pk", "slot", "sha256", "content_digest", "s3_uri")
    metrics = list(Metric.objects.filter(package=package).order_by("kind", "stage", "name", "facet"))
    fingerprint, _ = package_fingerprint(package, policy=policy, reports=list(reports))

    signoffs = list(
        SignOff.objects.filter(package=package).select_related("user", "policy_version").order_by("created_at", "pk")
    )
    for s in signoffs:
        s.is_stale = s.stale_at is not None or s.fingerprint != fingerprint  # type: ignore[attr-defined]
        # "signed under v2": made under another version than the one in force now (a sign-off without
        # one was made under the built-in default, or before versions were recorded: nothing is claimed)
        s.signed_under = (  # type: ignore[attr-defined]
            s.policy_version.label
            if s.policy_version is not None and s.policy_version_id != (version.pk if version else None)
            else ""
        )
    pushes = list(
        PushOutbox.objects.filter(package=package)
        .select_related("decision__decided_by", "decision__policy_version")
        .order_by("-created_at")
    )
    for push in pushes:
        push.can_retry = can_retry_push(user, push)  # type: ignore[attr-defined]
    exceptions = [
        e
        for e in PolicyException.objects.filter(package=package).select_related("recorded_by")
        if e.fingerprint == fingerprint
    ]
    for s in signoffs:
        s.is_withdrawn = s.withdrawn_at is not None  # type: ignore[attr-defined]
    findings = applicable_findings(package, user)
    blocking_found = blocking_of(findings)
    state = verdict(
        package,
        policy=policy,
        signoffs=signoff_views(signoffs),
        metrics=[MetricObservation(name=m.name, value=m.value, facet=m.facet, kind=m.kind) for m in metrics],
        fingerprint=fingerprint,
        status=effective_status(package, pushes),
        waived=exception_gates(exceptions, fingerprint),
        findings=blocking_found,
    )
    status = status_of_review(
        package, pushes, outcome=state.outcome, missing=state.missing_roles, blocked=state.blocked_by
    )
    held = user_roles(user)
    signability = signable_roles(state, package, user, held)
    result = state.result
    signable, reason = signability.roles, signability.reason(policy, held)
    is_compliance = COMPLIANCE_ROLE in held and is_active_user(user)

    baseline = _baseline(package)
    previous = _previous(package)
    return ReviewState(
        policy=policy,
        result=result,
        fingerprint=fingerprint,
        signoffs=signoffs,
        signable_roles=signable,
        cannot_sign_reason=reason,
        pushes=pushes,
        latest_push=pushes[0] if pushes else None,
        can_revoke=can_revoke(user, package)
        and effective_status(package, pushes, include_failed=False) == ApprovalStatus.APPROVED,
        can_retry_push=any(p.can_retry for p in pushes),  # type: ignore[attr-defined]
        metrics_vs_approved=_compare_metrics(metrics, baseline.metrics.all() if baseline else []),
        baseline_package=baseline,
        previous_package=previous,
        diff_from_previous=diff_packages(previous, package, policy) if previous is not None else [],
        effective_status=state.status,
        status=status,
        blocking=state.blocking,
        exceptions=exceptions,
        can_record_exception=is_compliance and status.open and bool(state.blocking),
        approvals_blocked=bool(state.blocking) or bool(state.blocking_findings),
        withdrawable=withdrawable_ids(signoffs, user, open_=status.open and not state.deleted),
        version=version,
        decision=next((p.decision for p in pushes if p.decision is not None), None),
        findings=findings,
        blocking_findings=state.blocking_findings,
        conditions=conditions_of([package.pk]).get(package.pk, []),
        can_raise_finding=can_raise(user, policy, held) and package.deleted_at is None,
    )


def withdrawable_ids(signoffs: list[SignOff], user: Any, *, open_: bool) -> list[int]:
    """My current (not stale, not withdrawn) sign-offs, while the version is still under review:
    what the withdrawal service (``signoffs.signoff_withdraw``) would accept."""
    if not open_ or not is_active_user(user):
        return []
    return [
        s.pk for s in signoffs if s.user_id == user.pk and not getattr(s, "is_stale", False) and s.withdrawn_at is None
    ]


# --------------------------------------------------------------------------------------------- comparisons


def _baseline(package: ModelPackage) -> ModelPackage | None:
    return (
        ModelPackage.objects.filter(
            group_id=package.group_id, approval_status=ApprovalStatus.APPROVED, deleted_at__isnull=True
        )
        .exclude(pk=package.pk)
        .defer(*_DEFERRED)
        .order_by("-version")
        .prefetch_related(Prefetch("metrics", queryset=Metric.objects.order_by("kind", "stage", "name", "facet")))
        .first()
    )


def _previous(package: ModelPackage) -> ModelPackage | None:
    return (
        ModelPackage.objects.filter(group_id=package.group_id, version__lt=package.version, deleted_at__isnull=True)
        .select_related("model_card")
        .defer(*_DEFERRED)
        .order_by("-version")
        .first()
    )


def _metric_key(m: Metric) -> tuple[str, str, str]:
    return (m.name.casefold(), "".join(m.facet.split()).casefold(), m.stage)


def _compare_metrics(metrics: Iterable[Metric], baseline_metrics: Iterable[Metric]) -> list[MetricComparison]:
    baseline: dict[tuple[str, str, str], Metric] = {}
    for m in baseline_metrics:
        baseline.setdefault(_metric_key(m), m)
    rows: list[MetricComparison] = []
    for m in metrics:
        base = baseline.get(_metric_key(m))
        base_value = base.value if base is not None else None
        delta = m.value - base_value if m.value is not None and base_value is not None else None
        verdict = better(m.name, m.kind, m.value, base_value) if delta is not None else None
        rows.append(MetricComparison(m.name, m.facet, m.value, base_value, delta, verdict, m.kind, m.stage))
    return rows


def hyperparameters(package: ModelPackage) -> dict[str, str]:
    """``training_details.training_job_details.hyper_parameters`` (and the user-provided ones) of the card."""
    details = (card_content(package).get("training_details") or {}).get("training_job_details") or {}
    found: dict[str, str] = {}
    if not isinstance(details, dict):
        return found
    for key in ("hyper_parameters", "user_provided_hyper_parameters"):
        items = details.get(key) or []
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict) and item.get("name") is not None:
                    found.setdefault(str(item["name"]), value_text(item.get("value")))
    return found


def _rows(prefix: str, before: dict[str, Any], after: dict[str, Any]) -> list[DiffRow]:
    rows = []
    for key in sorted(set(before) | set(after), key=str):
        old, new = value_text(before.get(key)), value_text(after.get(key))
        if old != new:
            rows.append(DiffRow(f"{prefix}{key}", old, new))
    return rows


def _containers(package: ModelPackage) -> dict[str, Any]:
    spec = package.inference_specification if isinstance(package.inference_specification, dict) else {}
    out: dict[str, Any] = {}
    containers = [c for c in spec.get("Containers") or [] if isinstance(c, dict)]
    for i, c in enumerate(containers, start=1):
        prefix = f"Container {i} " if len(containers) > 1 else ""
        source = c.get("ModelDataSource")
        s3_source = source.get("S3DataSource") if isinstance(source, dict) else None
        out[f"{prefix}{'image' if prefix else 'Image'}"] = c.get("Image")
        out[f"{prefix}{'image digest' if prefix else 'Image digest'}"] = c.get("ImageDigest")
        out[f"{prefix}{'model data URL' if prefix else 'Model data URL'}"] = c.get("ModelDataUrl") or (
            s3_source.get("S3Uri") if isinstance(s3_source, dict) else None
        )
    return out


def diff_packages(before: ModelPackage, after: ModelPackage, policy: PolicySpec | None = None) -> list[DiffRow]:
    """What changed from ``before`` to ``after``: reproducibility keys, images and digests, model
    data, other customer metadata (role flags left out), metadata properties, hyperparameters."""
    flags = set(DEFAULT_ROLE_FLAGS.values()) | (set(policy.role_flags.values()) if policy else set())
    meta_before = before.customer_metadata if isinstance(before.customer_metadata, dict) else {}
    meta_after = after.customer_metadata if isinstance(after.customer_metadata, dict) else {}
    repro = set(REPRODUCIBILITY_KEYS)
    rows = _rows(
        "Reproducibility: ",
        {k: meta_before.get(k) for k in REPRODUCIBILITY_KEYS},
        {k: meta_after.get(k) for k in REPRODUCIBILITY_KEYS},
    )
    rows += _rows("", _containers(before), _containers(after))
    rows += _rows(
        "Customer metadata: ",
        {k: v for k, v in meta_before.items() if k not in repro and k not in flags},
        {k: v for k, v in meta_after.items() if k not in repro and k not in flags},
    )
    props_before = before.metadata_properties if isinstance(before.metadata_properties, dict) else {}
    props_after = after.metadata_properties if isinstance(after.metadata_properties, dict) else {}
    rows += _rows("Metadata property: ", props_before, props_after)
    rows += _rows("Hyperparameter: ", hyperparameters(before), hyperparameters(after))
    return rows
