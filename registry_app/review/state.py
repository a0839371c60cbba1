"""The one review verdict: what a package's review state is, computed one way for every caller.

The review page (``panel``), the queues (``queue``) and the sign-off service (``signoffs``) ask
this module; none of them assembles its own answer. It owns:

* ``effective_status``: the mirror's status, or the target of the dashboard's own decision that
  is still on its way to the registry;
* ``package_fingerprint``: the hash of what a reviewer reviews (a sign-off is valid for one);
* ``signoff_views`` / ``metric_observations`` / ``is_registrant`` (and ``cards.card_status_of``):
  the policy engine's inputs, from rows;
* ``verdict``: the policy's result for those inputs, the outcome and the roles still missing;
* ``signable_roles``: the roles a person may sign now, and for every other required role the
  refusal the sign-off service would raise.

Reads only: nothing here writes, and nothing here imports a module that writes.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from registry_app.mirror import cards, mapping
from registry_app.mirror.cards import card_status_of
from registry_app.models import EvaluationReport, ModelPackage, PushOutbox, SignOff
from registry_app.models.registry import ApprovalStatus
from registry_app.permissions import is_active_user, principal_names
from registry_app.review.finding_list import BlockingFinding, finding_reason
from registry_app.review.policies import policy_for_group
from registry_app.review.policy import (
    DEFAULT_ROLE_FLAGS,
    REJECTED,
    GateResult,
    MetricObservation,
    PolicyResult,
    PolicySpec,
    SignOffNotAllowed,
    SignOffView,
    check_can_sign,
    evaluate,
)
from registry_app.review.status import blocking_gates, gate_shortfall

__all__ = [
    "APPROVAL_METADATA_KEYS",
    "FINGERPRINT_VERSION",
    "PENDING_OUTCOME",
    "Signability",
    "Verdict",
    "check_signoff",
    "current_signer_ids",
    "effective_status",
    "exception_gates",
    "fingerprint_of_record",
    "is_registrant",
    "metric_observations",
    "package_fingerprint",
    "signable_roles",
    "signoff_views",
    "verdict",
]

FINGERPRINT_VERSION = 1
# Mirror columns of a package that are reviewed content (the fingerprint hashes them).
REVIEWED_COLUMNS = (
    "description",
    "inference_specification",
    "model_metrics",
    "metadata_properties",
    "customer_metadata",
    "embedded_card_status",
    "embedded_card_content",
)
# Keys the dashboard itself may write next to the role flags; never part of what is reviewed.
# ``LastRevalidated`` (issue 15): written by a passed revalidation; with it hashed, the push would stale
# every sign-off of the version it revalidated.
APPROVAL_METADATA_KEYS = frozenset({"ApprovalStatus", "ApprovalDescription", "ModelApprovalStatus", "LastRevalidated"})
PENDING_OUTCOME = "Pending"


class _DecisionPush(Protocol):
    """What ``effective_status`` reads of a push (a ``PushOutbox`` or a plain row)."""

    kind: str
    state: str
    target_status: str
    created_at: Any


# --------------------------------------------------------------------------------------------- status


def effective_status(
    package: ModelPackage, pushes: Sequence[_DecisionPush] | None = None, *, include_failed: bool = True
) -> str:
    """The status the package has, or will have once the dashboard's own decision reaches the
    registry: the target of the newest undelivered decision push, else the mirror's status.

    ``include_failed``: a failed decision push still decides the package for sign-offs (staff
    retries it; nobody signs on). For the expected status of a *new* push only pushes still on
    their way (pending/sending) count, because only those are sent before it.
    ``pushes`` (any order, any kind) saves the query.
    """
    states = PushOutbox.UNDELIVERED_STATES if include_failed else PushOutbox.ACTIVE_STATES
    if pushes is None:
        pushes = list(
            PushOutbox.objects.filter(package=package, kind=PushOutbox.Kind.DECISION, state__in=states)
            .exclude(target_status="")
            .order_by("-created_at")[:1]
        )
    undelivered = [p for p in pushes if p.kind == PushOutbox.Kind.DECISION and p.state in states and p.target_status]
    if undelivered:
        return str(max(undelivered, key=lambda p: p.created_at).target_status)
    return str(package.approval_status)


# --------------------------------------------------------------------------------------------- inputs


def signoff_views(signoffs: Iterable[SignOff]) -> list[SignOffView]:
    """Policy-engine views of sign-off rows (``user`` selected with them).

    A row marked stale keeps a fingerprint that can never be current, so it stays stale even if
    the content later changes back: a stale sign-off must be redone, never revived.
    """
    return [
        signoff_view(
            s.user_id, s.user.get_username(), s.role, s.decision, s.fingerprint, s.stale_at, s.created_at, s.comment
        )
        for s in signoffs
        if getattr(s, "withdrawn_at", None) is None  # a withdrawn sign-off counts for nothing
    ]


def signoff_view(
    user_id: int, username: str, role: str, decision: str, fingerprint: str, stale_at: Any, signed_at: Any, comment: str
) -> SignOffView:
    """One view from a sign-off's columns (``values_list`` rows need no model instance)."""
    return SignOffView(
        user_id=user_id,
        username=username,
        role=role,
        decision=decision,
        fingerprint=fingerprint if stale_at is None else f"stale:{fingerprint}",
        signed_at=signed_at,
        comment=comment,
    )


def metric_observations(package: ModelPackage) -> list[MetricObservation]:
    """The package's normalised metrics (uses a ``metrics`` prefetch when there is one)."""
    return [MetricObservation(name=m.name, value=m.value, facet=m.facet, kind=m.kind) for m in package.metrics.all()]


def is_registrant(package: ModelPackage, user: Any) -> bool:
    """Whether ``CreatedBy`` names ``user`` (SourceIdentity, session name, IAM user or Studio
    profile, compared case-insensitively with the username). No query."""
    username = user.get_username().casefold()
    return any(name.casefold() == username for name in principal_names(package.created_by))


# --------------------------------------------------------------------------------------------- fingerprint


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _card_part(package: ModelPackage) -> dict[str, Any]:
    card = package.model_card if package.model_card_id is not None else None
    if card is not None:
        return {"origin": "standalone", "name": card.name, "version": card.version, "content_hash": card.content_hash}
    if package.embedded_card_content is not None:
        try:
            content_hash = cards.content_hash(package.embedded_card_content)
        except cards.CardContentError:
            content_hash = _digest(package.embedded_card_content)
        return {"origin": "embedded", "content_hash": content_hash}
    return {"origin": ""}


def _reports_part(reports: Iterable[Any]) -> dict[str, str]:
    return {
        report.slot: (f"sha256:{report.sha256}" if report.sha256 else report.content_digest or report.s3_uri)
        for report in reports
    }


def package_fingerprint(
    package: ModelPackage,
    *,
    policy: PolicySpec | None = None,
    reports: Iterable[EvaluationReport] | None = None,
) -> tuple[str, dict[str, Any]]:
    """``(sha256 hex, detail)`` of what a reviewer reviews on this package.

    Included: the model card (a standalone card's name, version and content hash, or the hash
    of the card embedded in the package), the evaluation reports (slot -> sha256 of the bytes
    fetched, or the declared ContentDigest, or the S3 URI when neither is known) and the
    package's reviewed content: description, inference specification (images, digests, model
    data), ModelMetrics, MetadataProperties and CustomerMetadataProperties. ``detail`` keeps one
    hash per part so a page can say *what* changed.

    Excluded on purpose, because the dashboard writes them itself: the role-flag keys (this
    policy's and the built-in ones), the approval status and description, and above all
    ``LastModifiedTime`` / ``LastModifiedBy``. Every UpdateModelPackage the dashboard sends,
    even one that only sets ``MLEngineerApproved=true`` after the first sign-off, moves
    ``LastModifiedTime``; with it in the hash the first sign-off would make every earlier
    sign-off stale, and a package could never collect its approvals. A change someone makes
    elsewhere is still caught: it changes one of the parts above.

    Queries: the policy (unless given), the package's card (unless selected with it) and its
    reports (unless given, or prefetched).
    """
    if policy is None:
        policy = policy_for_group(package.group)
    flag_keys = set(DEFAULT_ROLE_FLAGS.values()) | set(policy.role_flags.values()) | APPROVAL_METADATA_KEYS
    customer = package.customer_metadata if isinstance(package.customer_metadata, dict) else {}
    detail: dict[str, Any] = {
        "v": FINGERPRINT_VERSION,
        "card": _card_part(package),
        "reports": _reports_part(package.reports.all() if reports is None else reports),
        "description": _digest(package.description or ""),
        "inference_specification": _digest(package.inference_specification or {}),
        "model_metrics": _digest(package.model_metrics or {}),
        "metadata_properties": _digest(package.metadata_properties or {}),
        "customer_metadata": _digest({k: v for k, v in customer.items() if k not in flag_keys}),
    }
    return _digest(detail), detail


def fingerprint_of_record(
    package: ModelPackage, record: dict[str, Any], *, policy: PolicySpec | None = None
) -> tuple[str, dict[str, Any]]:
    """The fingerprint ``package`` would have if the mirror held ``record`` (a fresh
    DescribeModelPackage): its reviewed content replaced by the registry's, the mirror's report
    digests and standalone card kept (a changed ``ModelMetrics`` or card reference changes the
    hash through ``model_metrics`` / ``customer_metadata``). Pure apart from the policy lookup."""
    fresh = mapping.package_fields(record)
    candidate = copy.copy(package)
    for name in REVIEWED_COLUMNS:
        setattr(candidate, name, fresh[name])
    reports = list(package.reports.all())
    return package_fingerprint(candidate, policy=policy, reports=reports)


# --------------------------------------------------------------------------------------------- verdict


@dataclass(frozen=True)
class Verdict:
    """The review state of one package: the policy's result and what follows from it."""

    policy: PolicySpec
    result: PolicyResult
    fingerprint: str
    signoffs: list[SignOffView]
    status: str  # effective status (a decision on its way counts)
    deleted: bool
    outcome: str  # what is decided: the effective status once decided, else Rejected | Pending
    missing_roles: list[str] = field(default_factory=list)  # only while the outcome is Pending
    blocking: list[GateResult] = field(default_factory=list)  # failing gates no exception waives (Pending only)
    blocked_by: list[str] = field(default_factory=list)  # what keeps a Pending verdict from approving
    waived: frozenset[str] = frozenset()  # gates a current policy exception waives
    blocking_findings: list[BlockingFinding] = field(default_factory=list)  # open, blocking (Pending only)

    @property
    def decided(self) -> bool:
        return self.outcome != PENDING_OUTCOME


def verdict(
    package: ModelPackage,
    *,
    policy: PolicySpec,
    signoffs: list[SignOffView],
    metrics: list[MetricObservation],
    fingerprint: str,
    status: str,
    waived: frozenset[str] = frozenset(),
    findings: Sequence[BlockingFinding] = (),
) -> Verdict:
    """Evaluate ``policy`` for ``package`` on the given inputs (pure: no query beyond the
    package's card, which callers select with it). ``waived``: ``exception_gates`` of the
    package's policy exceptions. ``findings``: the open blocking findings applying to the package
    (``finding_list.blocking_by_package``); while Pending they block approval like a failing gate."""
    result = evaluate(
        policy,
        signoffs=signoffs,
        metrics=metrics,
        card_status=card_status_of(package) or None,
        current_fingerprint=fingerprint,
        waived_gates=waived,
    )
    if status != ApprovalStatus.PENDING:
        outcome = status  # decided in the registry, or by the dashboard with the push on its way
    elif result.decision == REJECTED:
        outcome = REJECTED
    else:
        outcome = PENDING_OUTCOME
    missing = [r.role for r in result.roles if r.remaining > 0] if outcome == PENDING_OUTCOME else []
    blocking = blocking_gates(result.gates, waived) if outcome == PENDING_OUTCOME else []
    blocked_by = [gate_shortfall(g) for g in blocking]
    if outcome == PENDING_OUTCOME:
        blocked_by += [gate_shortfall(g) for g in result.gates if g.status == "missing" and str(g.gate) not in waived]
    if outcome == PENDING_OUTCOME and result.card_check == "fail":
        blocked_by.append("model card not Approved")
    blocking_findings = list(findings) if outcome == PENDING_OUTCOME else []
    blocked_by += [finding_reason(f) for f in blocking_findings]
    deleted = package.deleted_at is not None or package.group.deleted_at is not None
    return Verdict(
        policy=policy,
        result=result,
        fingerprint=fingerprint,
        signoffs=signoffs,
        status=status,
        deleted=deleted,
        outcome=outcome,
        missing_roles=missing,
        blocking=blocking,
        blocked_by=blocked_by,
        waived=waived,
        blocking_findings=blocking_findings,
    )


def exception_gates(exceptions: Iterable[Any], fingerprint: str) -> frozenset[str]:
    """The gates (``str(gate)``) waived by the policy exceptions recorded on ``fingerprint``
    (``PolicyException`` rows or ``(fingerprint, gates)`` pairs)."""
    waived: set[str] = set()
    for exc in exceptions:
        recorded, gates = (exc.fingerprint, exc.gates) if hasattr(exc, "fingerprint") else exc
        if recorded == fingerprint and isinstance(gates, list):
            waived.update(str(g.get("gate")) for g in gates if isinstance(g, dict) and g.get("gate"))
    return frozenset(waived)


def current_signer_ids(state: Verdict) -> set[int]:
    """Users holding a current sign-off on the package, in any role, counted or not: the people
    ``check_can_sign`` refuses every further role (``already_signed`` / ``separation_of_duties``).

    As the policy engine tallies: each (user, role) counts by its latest sign-off (ties: the later
    row), which is current when its fingerprint is the verdict's.
    """
    latest: dict[tuple[int, str], SignOffView] = {}
    for s in state.signoffs:
        key = (s.user_id, s.role)
        if key not in latest or s.signed_at >= latest[key].signed_at:
            latest[key] = s
    return {s.user_id for s in latest.values() if s.fingerprint == state.fingerprint}


@dataclass(frozen=True)
class Signability:
    """The roles ``user`` may sign now, and the refusal for each other required role they were asked about."""

    roles: list[str]
    refusals: dict[str, SignOffNotAllowed]

    def reason(self, policy: PolicySpec, held: set[str]) -> str:
        """Why the user may sign nothing: the most specific refusal (blank when they may sign)."""
        if self.roles:
            return ""
        for role in policy.required_roles:
            if role in held and role in self.refusals:
                return self.refusals[role].message
        first = next(iter(self.refusals.values()), None)
        if first is not None and first.code != "role_not_held":
            return first.message
        required = ", ".join(policy.required_roles)
        return f"You hold none of the roles policy {policy.name!r} requires ({required})."


def signable_roles(
    state: Verdict, package: ModelPackage, user: Any, held: set[str], *, only_held: bool = False
) -> Signability:
    """Which required roles ``user`` (holding ``held``) may sign on ``package`` now.

    The same ``check_can_sign`` the sign-off service runs under the package lock: separation of
    duties, registrant, decided or deleted package, role required and held, role complete.
    ``only_held`` skips roles the user does not hold (the queue's case: it needs no explanation).
    """
    if not is_active_user(user):
        refusal = SignOffNotAllowed("Sign in to sign off.", code="not_authenticated")
        return Signability([], {role: refusal for role in state.policy.required_roles})
    registrant = is_registrant(package, user)
    allowed: list[str] = []
    refusals: dict[str, SignOffNotAllowed] = {}
    for role in state.policy.required_roles:
        if only_held and role not in held:
            continue
        try:
            check_signoff(state, user, held, role, registrant=registrant)
            allowed.append(role)
        except SignOffNotAllowed as exc:
            refusals[role] = exc
    return Signability(allowed, refusals)


def check_signoff(state: Verdict, user: Any, held: set[str], role: str, *, registrant: bool) -> None:
    """Raise ``SignOffNotAllowed`` unless ``user`` may now sign ``role`` (``policy.check_can_sign``
    on this verdict's inputs; ``registrant``: ``is_registrant(package, user)``)."""
    check_can_sign(
        state.policy,
        user_id=user.pk,
        username=user.get_username(),
        user_roles=held,
        role=role,
        signoffs=state.signoffs,
        current_fingerprint=state.fingerprint,
        registered_by_user_id=user.pk if registrant else None,
        package_status=state.status,
        package_deleted=state.deleted,
    )
