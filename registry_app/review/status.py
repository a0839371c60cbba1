"""The one display status of a version: what the review page's banner, the queue's rows, the group
page's version list and the nav say about it, in the same words everywhere.

``version_status`` is pure: it takes facts (the registry's status, the verdict's outcome, the roles
still missing, the gates that block, the newest decision push and its decision) and returns a
``VersionStatus``. The adapters feed it from what each page already loaded: ``status_of_review``
(the review panel's rows), ``status_of_row`` (a stored ``ReviewState`` row of the queue) and
``status_of_package`` (a package of the group page, with its newest decision push when it has one).

The kinds, in the order they win:

* ``deleted``: the version is gone from the registry;
* ``conflict``: the newest decision push met a registry that had changed under it;
* ``pushing``: decided, the push is on its way (pending, sending, or sent and not yet observed);
* ``failed``: decided, the push gave up (staff may retry);
* ``revoked`` / ``archived`` / ``approved`` / ``rejected``: the registry's status, with who decided
  it, when, and whether through the dashboard or outside it;
* ``blocked``: pending, and a gate fails (or cannot be checked) or the card check fails: approvals
  cannot complete the decision; says which gate, observed vs required;
* ``pending``: pending review, with the roles still missing.

Reads only, and no I/O: the callers pass what they hold.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from registry_app.permissions import principal_names
from registry_app.review.policy import GateResult

__all__ = [
    "DecisionFacts",
    "VersionStatus",
    "blocking_gates",
    "gate_shortfall",
    "status_of_package",
    "status_of_review",
    "status_of_row",
    "version_status",
]

APPROVED = "Approved"
REJECTED = "Rejected"
PENDING = "PendingManualApproval"
IN_FLIGHT = ("pending", "sending")
BLOCKED_SEP = "; "

# The comparison that failed, the other way round: "auc 0.842 < 0.85" for a failed ">=".
_NEGATED = {">=": "<", ">": "≤", "<=": ">", "<": "≥", "==": "≠", "abs<=": ">"}
_LABELS = {
    "deleted": "Deleted",
    "conflict": "Conflict",
    "pushing": "Decided — pushing",
    "failed": "Decided — push failed",
    "revoked": "Revoked",
    "archived": "Archived",
    "approved": "Approved",
    "rejected": "Rejected",
    "blocked": "Blocked by policy",
    "pending": "Pending review",
}
_BADGES = {
    "deleted": "badge-deleted",
    "conflict": "badge-rejected",
    "pushing": "badge-info",
    "failed": "badge-rejected",
    "revoked": "badge-rejected",
    "archived": "badge-neutral",
    "approved": "badge-approved",
    "rejected": "badge-rejected",
    "blocked": "badge-rejected",
    "pending": "badge-pending",
}


@dataclass(frozen=True)
class DecisionFacts:
    """What the status says of the dashboard's newest decision (a ``Decision`` row, read through its push)."""

    kind: str  # policy | rejection | revocation | archive
    status: str  # Approved | Rejected
    by: str  # username, "" for the policy engine
    at: dt.datetime | None
    description: str = ""


@dataclass(frozen=True)
class VersionStatus:
    kind: str
    detail: str
    missing_roles: tuple[str, ...] = ()
    blocked_by: tuple[str, ...] = ()
    polling: bool = False  # a push is in flight: the page refreshes itself until it settles

    @property
    def label(self) -> str:
        return _LABELS[self.kind]

    @property
    def badge(self) -> str:
        return _BADGES[self.kind]

    @property
    def text(self) -> str:
        """``label: detail`` on one line (lists, titles, e-mails)."""
        return f"{self.label}: {self.detail}" if self.detail else self.label

    @property
    def open(self) -> bool:
        """Still under review: sign-offs (and their withdrawal) still matter."""
        return self.kind in ("pending", "blocked")


# --------------------------------------------------------------------------------------------- gates


def _plain(value: float, *, distinct_from: float | None = None) -> str:
    """``0.842``, ``4.5``, ``4``: up to 6 significant digits, never scientific for ordinary values;
    the exact value when rounding would print it equal to the threshold it failed."""
    text = format(value, ".6g")
    if distinct_from is not None and value != distinct_from and text == format(distinct_from, ".6g"):
        text = repr(value)
    return text


def gate_shortfall(result: GateResult) -> str:
    """``auc 0.842 < 0.85``: the observed value against the required one (or why none was observed)."""
    gate = result.gate
    threshold = _plain(gate.threshold)
    required = f"{gate.subject} {gate.op} {threshold}" if gate.op != "abs<=" else f"|{gate.subject}| <= {threshold}"
    if result.observed is None:
        return f"{gate.subject}: no value (requires {required})"
    if gate.op == "abs<=":
        return f"|{gate.subject}| {_plain(abs(result.observed), distinct_from=gate.threshold)} > {threshold}"
    shown = _plain(result.observed, distinct_from=gate.threshold)
    return f"{gate.subject} {shown} {_NEGATED[gate.op]} {threshold}"


def blocking_gates(gates: Iterable[GateResult], waived: Iterable[str] = ()) -> list[GateResult]:
    """The gates that fail on an observed value and are not waived by a policy exception: these
    refuse approvals. (A gate without a value blocks the decision too, but reporting the metric
    is the way out, not an exception.)"""
    skip = set(waived)
    return [g for g in gates if g.status == "fail" and str(g.gate) not in skip]


# --------------------------------------------------------------------------------------------- the status


def _when(moment: dt.datetime | None) -> str:
    return f" on {moment.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC" if moment else ""


def _decided(decision: DecisionFacts) -> str:
    if decision.kind == "revocation":
        return f"revoked by {decision.by or 'compliance'}{_when(decision.at)} through the dashboard"
    if decision.kind == "archive":
        return f"archived by {decision.by or 'compliance'}{_when(decision.at)} through the dashboard"
    verb = "approved" if decision.status == APPROVED else "rejected"
    by = f", deciding sign-off by {decision.by}" if decision.by else ""
    return f"{verb} through the dashboard{by}{_when(decision.at)}"


def version_status(
    *,
    registry_status: str,
    deleted: bool = False,
    outcome: str = "Pending",
    missing_roles: Sequence[str] = (),
    blocked_by: Sequence[str] = (),
    push_state: str = "",
    decision: DecisionFacts | None = None,
    modified_by: str = "",
    modified_at: dt.datetime | None = None,
) -> VersionStatus:
    """The display status of one version from its facts (pure; see the module docstring)."""
    missing, blocked = tuple(missing_roles), tuple(blocked_by)
    if deleted:
        return VersionStatus("deleted", "this version no longer exists in the registry")
    if push_state == "conflict":
        target = decision.status if decision else "the dashboard's decision"
        return VersionStatus(
            "conflict",
            f"the registry changed before the dashboard's {target} decision arrived "
            f"(registry shows {registry_status or 'unknown'}); staff can retry the push",
        )
    if decision is not None and (push_state in IN_FLIGHT or (push_state == "sent" and registry_status == PENDING)):
        return VersionStatus("pushing", f"{_decided(decision)}; being written to SageMaker", polling=True)
    if decision is not None and push_state == "failed":
        return VersionStatus("failed", f"{_decided(decision)}; the push to SageMaker failed, staff can retry")
    if registry_status in (APPROVED, REJECTED):
        if decision is not None and decision.status == registry_status:
            kind = {"revocation": "revoked", "archive": "archived"}.get(decision.kind, registry_status.lower())
            why = f": {decision.description}" if kind == "revoked" and decision.description else ""
            return VersionStatus(kind, _decided(decision) + why)
        by = f" by {modified_by}" if modified_by else ""
        return VersionStatus(registry_status.lower(), f"set outside the dashboard{by}{_when(modified_at)}")
    if outcome in (APPROVED, REJECTED):
        return VersionStatus(
            "pushing", f"{outcome.lower()} through the dashboard; being written to SageMaker", polling=True
        )
    if blocked:
        waiting = f"; still missing {', '.join(missing)}" if missing else ""
        return VersionStatus("blocked", BLOCKED_SEP.join(blocked) + waiting, missing, blocked)
    if missing:
        return VersionStatus("pending", f"waiting for {', '.join(missing)}", missing)
    return VersionStatus("pending", "waiting for the policy to be evaluated")


# --------------------------------------------------------------------------------------------- adapters


def _principal(user_context: Any) -> str:
    names = principal_names(user_context)
    return names[0] if names else ""


def decision_facts(decision: Any) -> DecisionFacts | None:
    """From a ``Decision`` (``decided_by`` selected with it)."""
    if decision is None:
        return None
    user = decision.decided_by
    return DecisionFacts(
        kind=decision.kind,
        status=decision.status,
        by=user.get_username() if user is not None else "",
        at=decision.created_at,
        description=decision.description,
    )


def _newest_decision_push(pushes: Iterable[Any]) -> Any:
    decisions = [p for p in pushes if p.kind == "decision" and p.target_status]
    return max(decisions, key=lambda p: p.created_at) if decisions else None


def status_of_package(package: Any, pushes: Iterable[Any] = (), *, review: Any = None) -> VersionStatus:
    """A version's status from the package and its pushes (each with ``decision`` selected).

    ``review``: a stored ``ReviewState`` row (or the verdict-like object) for a pending version;
    without it a pending version reads "Pending review".
    """
    push = _newest_decision_push(pushes)
    deleted = package.deleted_at is not None
    return version_status(
        registry_status=str(package.approval_status),
        deleted=deleted,
        outcome=getattr(review, "outcome", "Pending") if review is not None else "Pending",
        missing_roles=tuple(getattr(review, "missing_roles", ()) or ()) if review is not None else (),
        blocked_by=_split(getattr(review, "blocked_by", "")) if review is not None else (),
        push_state=push.state if push is not None else "",
        decision=decision_facts(push.decision) if push is not None and push.decision_id else None,
        modified_by=_principal(package.last_modified_by),
        modified_at=package.last_modified_at,
    )


def _split(blocked: Any) -> tuple[str, ...]:
    if isinstance(blocked, list | tuple):
        return tuple(blocked)
    return tuple(part for part in str(blocked or "").split(BLOCKED_SEP) if part)


def status_of_review(
    package: Any, pushes: Iterable[Any], *, outcome: str, missing: Sequence[str], blocked: Sequence[str]
) -> VersionStatus:
    """The review page's status: the package, its pushes (newest first, ``decision__decided_by``
    selected) and the verdict's outcome, missing roles and blocking gates."""
    push = _newest_decision_push(pushes)
    return version_status(
        registry_status=str(package.approval_status),
        deleted=package.deleted_at is not None or package.group.deleted_at is not None,
        outcome=outcome,
        missing_roles=missing,
        blocked_by=blocked,
        push_state=push.state if push is not None else "",
        decision=decision_facts(push.decision) if push is not None and push.decision_id else None,
        modified_by=_principal(package.last_modified_by),
        modified_at=package.last_modified_at,
    )


def status_of_row(row: dict[str, Any]) -> VersionStatus:
    """A queue row's status (``ReviewState`` values: outcome, missing_roles, blocked_by, push_state).

    The row exists only while the registry shows the version pending and live, so the registry
    status is pending; what the dashboard decided is ``outcome``.
    """
    outcome = row.get("outcome") or "Pending"
    return version_status(
        registry_status=PENDING,
        outcome=outcome,
        missing_roles=tuple(row.get("missing_roles") or ()),
        blocked_by=_split(row.get("blocked_by")),
        push_state="conflict" if row.get("push_state") == "conflict" else "",
    )
