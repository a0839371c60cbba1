"""Evaluation: sign-offs, metrics and the card status in, a decision and its reasons out (pure)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from registry_app.review.policy.basics import (
    APPROVE,
    APPROVED,
    PENDING,
    PENDING_MANUAL_APPROVAL,
    REJECT,
    REJECTED,
    PolicyError,
    SignOffNotAllowed,
    fmt_threshold,
    fmt_value,
    norm_facet,
    norm_name,
    plain_text,
    plural,
)
from registry_app.review.policy.gates import MetricGate
from registry_app.review.policy.spec import PolicySpec

# --------------------------------------------------------------------------------------------
# Evaluation inputs and results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricObservation:
    """One normalised metric value from an evaluation report (``kind`` e.g. model_quality, bias)."""

    name: str
    value: float | None
    facet: str = ""
    kind: str = ""


@dataclass(frozen=True)
class SignOffView:
    """A recorded sign-off. ``fingerprint`` identifies the reviewed content at signing time."""

    user_id: int
    username: str
    role: str
    decision: str  # "approve" | "reject"
    fingerprint: str
    signed_at: datetime
    comment: str = ""

    def __post_init__(self) -> None:
        if self.decision not in (APPROVE, REJECT):
            raise PolicyError(f"sign-off decision must be 'approve' or 'reject', got {self.decision!r}")

    @property
    def is_approval(self) -> bool:
        return self.decision == APPROVE


@dataclass(frozen=True)
class GateResult:
    gate: MetricGate
    status: str  # "pass" | "fail" | "missing"
    observed: float | None
    reason: str


@dataclass(frozen=True)
class RoleProgress:
    role: str
    needed: int
    approvals: list[SignOffView]
    stale: list[SignOffView]
    rejections: list[SignOffView]

    @property
    def satisfied(self) -> bool:
        """Enough current approvals and no current rejection in this role."""
        return len(self.approvals) >= self.needed and not self.rejections

    @property
    def remaining(self) -> int:
        return max(0, self.needed - len(self.approvals))


@dataclass(frozen=True)
class PolicyResult:
    decision: str  # "Approved" | "Rejected" | "Pending"
    gates: list[GateResult]
    roles: list[RoleProgress]
    card_check: str  # "pass" | "fail" | "not_required"
    card_reason: str
    reasons: list[str]

    @property
    def all_gates_pass(self) -> bool:
        return all(g.status == "pass" for g in self.gates)

    @property
    def missing_roles(self) -> list[str]:
        return [r.role for r in self.roles if r.remaining > 0]


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tally:
    """Sign-offs sorted out: current ones per role, stale ones, and ones ignored for SoD."""

    current: dict[str, list[SignOffView]]
    stale: dict[str, list[SignOffView]]
    ignored: list[tuple[SignOffView, SignOffView]]  # (ignored, the sign-off that user made first)


def _tally(signoffs: Iterable[SignOffView], current_fingerprint: str) -> _Tally:
    # 1. Each (user, role) counts once: the latest sign-off supersedes earlier ones (re-sign after stale).
    latest: dict[tuple[int, str], SignOffView] = {}
    for s in signoffs:
        key = (s.user_id, s.role)
        if key not in latest or s.signed_at >= latest[key].signed_at:
            latest[key] = s
    ordered = sorted(latest.values(), key=lambda s: (s.signed_at, s.user_id, s.role))
    current: dict[str, list[SignOffView]] = {}
    stale: dict[str, list[SignOffView]] = {}
    first_role_of_user: dict[int, SignOffView] = {}
    ignored: list[tuple[SignOffView, SignOffView]] = []
    for s in ordered:
        if s.fingerprint != current_fingerprint:
            stale.setdefault(s.role, []).append(s)
            continue
        # 2. Separation of duties (defence in depth): a person's current sign-offs count for one role only,
        #    the one they signed first.
        first = first_role_of_user.get(s.user_id)
        if first is not None:
            ignored.append((s, first))
            continue
        first_role_of_user[s.user_id] = s
        current.setdefault(s.role, []).append(s)
    return _Tally(current=current, stale=stale, ignored=ignored)


def _role_progress(policy: PolicySpec, tally: _Tally) -> list[RoleProgress]:
    progress: list[RoleProgress] = []
    for role, needed in policy.required_roles.items():
        current = tally.current.get(role, [])
        progress.append(
            RoleProgress(
                role=role,
                needed=needed,
                approvals=[s for s in current if s.is_approval],
                stale=list(tally.stale.get(role, [])),
                rejections=[s for s in current if not s.is_approval],
            )
        )
    return progress


def _evaluate_gate(gate: MetricGate, metrics: Sequence[MetricObservation]) -> GateResult:
    name = norm_name(gate.metric)
    candidates = [m for m in metrics if norm_name(m.name) == name]
    if gate.facet:
        facet = norm_facet(gate.facet)
        candidates = [m for m in candidates if norm_facet(m.facet) == facet]
    if not candidates:
        where = f" for facet {gate.facet}" if gate.facet else ""
        return GateResult(gate, "missing", None, f"no metric named {gate.metric}{where} in the evaluation reports")

    def label(m: MetricObservation) -> str:
        return f"{gate.metric}[{m.facet}]" if m.facet else gate.metric

    present: list[tuple[MetricObservation, float]] = [
        (m, float(m.value)) for m in candidates if m.value is not None and not math.isnan(m.value)
    ]
    absent = [m for m in candidates if m.value is None or math.isnan(m.value)]
    failing = [(m, v) for m, v in present if not gate.holds(v)]
    t_text = fmt_threshold(gate.threshold)

    if failing:
        worst, value = max(failing, key=lambda mv: gate.badness(mv[1]))
        reason = _fail_sentence(gate, label(worst), value, t_text)
        others = [label(m) for m, _ in failing if m is not worst]
        if others:
            reason += f"; also failing: {', '.join(others)}"
        if absent:
            reason += f"; no value for: {', '.join(label(m) for m in absent)}"
        return GateResult(gate, "fail", value, reason)
    if absent:
        labels = ", ".join(label(m) for m in absent)
        return GateResult(gate, "missing", None, f"{labels} has no value in the evaluation reports")
    worst, value = max(present, key=lambda mv: gate.badness(mv[1]))
    reason = _pass_sentence(gate, label(worst), value, t_text)
    if len(present) > 1:
        reason += f" (worst of {len(present)} values)"
    return GateResult(gate, "pass", value, reason)


_PASS_SYMBOL = {">=": "≥", ">": ">", "<=": "≤", "<": "<", "==": "=", "abs<=": "≤"}


def _pass_sentence(gate: MetricGate, label: str, value: float, t_text: str) -> str:
    if gate.op == "abs<=":
        return f"|{label}| = {fmt_value(abs(value), distinct_from=gate.threshold)} ≤ {t_text}"
    if gate.op == "==":
        return f"{label} = {fmt_value(value)} equals {t_text}"
    return f"{label} = {fmt_value(value, distinct_from=gate.threshold)} {_PASS_SYMBOL[gate.op]} {t_text}"


def _fail_sentence(gate: MetricGate, label: str, value: float, t_text: str) -> str:
    shown = fmt_value(value, distinct_from=gate.threshold)
    if gate.op == ">=":
        return f"{label} = {shown} is below {t_text}"
    if gate.op == ">":
        return f"{label} = {shown} is not above {t_text}"
    if gate.op == "<=":
        return f"{label} = {shown} is above {t_text}"
    if gate.op == "<":
        return f"{label} = {shown} is not below {t_text}"
    if gate.op == "==":
        return f"{label} = {shown} is not equal to {t_text}"
    magnitude = fmt_value(abs(value), distinct_from=gate.threshold)
    return f"|{label}| = {magnitude} (value {shown}) is above {t_text}"


def _card_check(policy: PolicySpec, card_status: str | None) -> tuple[str, str]:
    if not policy.require_card_approved:
        return "not_required", "the policy does not require an approved model card"
    if card_status is None or not card_status.strip():
        return "fail", "the package has no model card; the policy requires an Approved model card"
    if card_status.strip() == APPROVED:
        return "pass", "the model card is Approved"
    return "fail", f"the model card is {card_status.strip()}; the policy requires it to be Approved"


def evaluate(
    policy: PolicySpec,
    *,
    signoffs: list[SignOffView],
    metrics: list[MetricObservation],
    card_status: str | None,
    current_fingerprint: str,
    waived_gates: frozenset[str] = frozenset(),
) -> PolicyResult:
    """Decide ``Approved`` / ``Rejected`` / ``Pending`` for one package under ``policy``.

    * Any current (non-stale) rejection -> Rejected, including one in a role the policy no longer
      requires (a reviewer's objection is never dropped silently).
    * Every role has its current approvals, every gate passes and the card check does not fail -> Approved.
    * Otherwise Pending; ``reasons`` says what is missing. Failing gates never auto-reject.
    ``waived_gates``: gates (``str(gate)``) a recorded policy exception lets fail without blocking.
    """
    tally = _tally(signoffs, current_fingerprint)
    roles = _role_progress(policy, tally)
    gates = [_evaluate_gate(g, metrics) for g in policy.gates]
    card_check, card_reason = _card_check(policy, card_status)

    rejections = sorted(
        (s for group in tally.current.values() for s in group if not s.is_approval),
        key=lambda s: (s.signed_at, s.user_id),
    )
    if rejections:
        rejected_because: list[str] = []
        for s in rejections:
            suffix = "" if s.role in policy.required_roles else " (a role this policy does not require)"
            comment = plain_text(s.comment)
            rejected_because.append(f"rejected by {s.role} {s.username}{suffix}" + (f": {comment}" if comment else ""))
        return PolicyResult(REJECTED, gates, roles, card_check, card_reason, rejected_because)

    reasons: list[str] = []
    for r in roles:
        if r.satisfied:
            continue
        have = len(r.approvals)
        text = f"{r.role} needs {r.remaining} more approval{'s' if r.remaining != 1 else ''} ({have} of {r.needed})"
        if r.stale:
            redo = ", ".join(f"{s.username}'s {'approval' if s.is_approval else 'rejection'}" for s in r.stale)
            text += f"; stale and must be redone because the package changed since: {redo}"
        reasons.append(text)
    for ignored, first in tally.ignored:
        if ignored.role in policy.required_roles:
            reasons.append(
                f"{ignored.username}'s {ignored.role} sign-off does not count: they already signed as "
                f"{first.role} and one person signs at most one role"
            )
    for g in gates:
        if str(g.gate) in waived_gates and g.status != "pass":
            reasons.append(f"gate {g.gate} does not pass ({g.reason}); a policy exception was recorded")
        elif g.status == "fail":
            reasons.append(f"gate {g.gate} failed: {g.reason}")
        elif g.status == "missing":
            reasons.append(f"gate {g.gate} cannot be checked: {g.reason}")
    if card_check == "fail":
        reasons.append(card_reason)

    blocking = (
        any(not r.satisfied for r in roles)
        or any(g.status != "pass" and str(g.gate) not in waived_gates for g in gates)
        or card_check == "fail"
    )
    if not blocking:
        return PolicyResult(APPROVED, gates, roles, card_check, card_reason, [])
    return PolicyResult(PENDING, gates, roles, card_check, card_reason, reasons)


def role_flags_for(policy: PolicySpec, signoffs: list[SignOffView], current_fingerprint: str) -> dict[str, str]:
    """``{flag: "true"}`` for each role with all its required current approvals (and no current rejection)."""
    roles = _role_progress(policy, _tally(signoffs, current_fingerprint))
    return {policy.flag_for(r.role): "true" for r in roles if r.satisfied}


# --------------------------------------------------------------------------------------------
# Sign-off permission (separation of duties)
# --------------------------------------------------------------------------------------------


def check_can_sign(
    policy: PolicySpec,
    *,
    user_id: int,
    username: str,
    user_roles: set[str],
    role: str,
    signoffs: list[SignOffView],
    current_fingerprint: str,
    registered_by_user_id: int | None,
    package_status: str,
    package_deleted: bool,
) -> None:
    """Raise ``SignOffNotAllowed`` unless ``user_id`` may now record a sign-off in ``role``.

    Checked in this order: package deleted, package already decided, role not required by the
    policy, user lacks the role, user registered the package, user already holds a current
    sign-off on this package (any role; re-signing the same role after it went stale is fine),
    role already has all its approvals.
    """
    if package_deleted:
        raise SignOffNotAllowed(
            "This model package has been deleted from the registry and can no longer be signed off.", code="deleted"
        )
    if package_status != PENDING_MANUAL_APPROVAL:
        raise SignOffNotAllowed(
            f"This model package was already decided (status {package_status or 'unknown'}); "
            "only packages pending manual approval can be signed off.",
            code="already_decided",
        )
    if role not in policy.required_roles:
        required = ", ".join(policy.required_roles)
        raise SignOffNotAllowed(
            f"The {role!r} role is not required by policy {policy.name!r} (required roles: {required}).",
            code="role_not_required",
        )
    if role not in user_roles:
        raise SignOffNotAllowed(f"{username} does not hold the {role} role.", code="role_not_held")
    if registered_by_user_id is not None and registered_by_user_id == user_id:
        raise SignOffNotAllowed(
            f"{username} registered this model package and cannot sign it off (separation of duties).",
            code="registrant",
        )
    tally = _tally(signoffs, current_fingerprint)
    mine = [s for group in tally.current.values() for s in group if s.user_id == user_id]
    mine += [ignored for ignored, _ in tally.ignored if ignored.user_id == user_id]
    if mine:
        earlier = min(mine, key=lambda s: s.signed_at)
        if earlier.role == role:
            raise SignOffNotAllowed(
                f"{username} has already signed off this model package as {role}.", code="already_signed"
            )
        raise SignOffNotAllowed(
            f"{username} already signed off this model package as {earlier.role}; one person may sign "
            "at most one role on a package (separation of duties).",
            code="separation_of_duties",
        )
    approvals = [s for s in tally.current.get(role, []) if s.is_approval]
    needed = policy.required_roles[role]
    if len(approvals) >= needed:
        raise SignOffNotAllowed(f"The {role} role already has its {plural(needed, 'sign-off')}.", code="role_complete")


# --------------------------------------------------------------------------------------------
# What is written back to SageMaker
