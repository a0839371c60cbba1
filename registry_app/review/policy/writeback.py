"""What is written back to SageMaker (the approval description) and the review SLA clock (pure)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from registry_app.review.policy.basics import (
    APPROVE,
    APPROVED,
    DESCRIPTION_LIMIT,
    DUE_SOON_FRACTION,
    ELLIPSIS,
    REJECT,
    REJECTED,
    PolicyError,
    plain_text,
)
from registry_app.review.policy.evaluate import SignOffView
from registry_app.review.policy.spec import PolicySpec

# --------------------------------------------------------------------------------------------


def _truncate(text: str, cap: int) -> str:
    if len(text) <= cap:
        return text
    if cap <= 0:
        return ""
    if cap == 1:
        return ELLIPSIS
    return text[: cap - 1].rstrip() + ELLIPSIS


def _largest_fitting(render: Callable[[int], str], hi: int, limit: int) -> str | None:
    """The rendering for the largest cap in [0, hi] that fits in ``limit``, or None."""
    lo, best = 0, None
    while lo <= hi:
        mid = (lo + hi) // 2
        text = render(mid)
        if len(text) <= limit:
            best = text
            lo = mid + 1
        else:
            hi = mid - 1
    return best


def approval_description(
    policy: PolicySpec,
    signoffs: list[SignOffView],
    *,
    decision: str,
    limit: int = DESCRIPTION_LIMIT,
) -> str:
    """The SageMaker ``ApprovalDescription`` for a decision, never longer than ``limit`` characters.

    ``Approved``: the approvers of each required role, in policy order, with their sign-off dates (UTC).
    ``Rejected``: the rejecting reviewers with their comments. The caller passes the sign-offs that
    count (this function has no fingerprint to judge staleness). Comments are shortened first, then
    names, then (as a last resort) the whole text, always marked with "…".
    """
    if decision not in (APPROVED, REJECTED):
        raise PolicyError(f"decision must be {APPROVED!r} or {REJECTED!r}, got {decision!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise PolicyError(f"limit must be a positive integer, got {limit!r}")

    latest: dict[tuple[int, str], SignOffView] = {}
    for s in signoffs:
        key = (s.user_id, s.role)
        if key not in latest or s.signed_at >= latest[key].signed_at:
            latest[key] = s
    role_order = {role: i for i, role in enumerate(policy.required_roles)}
    wanted = APPROVE if decision == APPROVED else REJECT
    chosen = sorted(
        (s for s in latest.values() if s.decision == wanted and (s.role in role_order or wanted == REJECT)),
        key=lambda s: (role_order.get(s.role, len(role_order)), s.signed_at, s.user_id),
    )
    entries = [
        (
            plain_text(s.role),
            plain_text(s.username) or f"user {s.user_id}",
            _date(s.signed_at),
            plain_text(s.comment),
        )
        for s in chosen
    ]

    def render(name_cap: int, comment_cap: int) -> str:
        if decision == APPROVED:
            if not entries:
                return "Approved via governance dashboard"
            body = ", ".join(f"{role} {_truncate(name, name_cap)} ({day})" for role, name, day, _ in entries)
            return f"Approved via governance dashboard: {body}"
        if not entries:
            return "Rejected via governance dashboard"
        parts = []
        for role, name, _, comment in entries:
            part = f"{role} {_truncate(name, name_cap)}"
            short = _truncate(comment, comment_cap)
            parts.append(f"{part}: {short}" if short else part)
        return "Rejected by " + "; ".join(parts)

    max_name = max((len(e[1]) for e in entries), default=0)
    max_comment = max((len(e[3]) for e in entries), default=0)
    text = render(max_name, max_comment)
    if len(text) <= limit:
        return text
    fitted = _largest_fitting(lambda c: render(max_name, c), max_comment, limit)
    if fitted is None:
        fitted = _largest_fitting(lambda n: render(max(n, 1), 0), max_name, limit)
    if fitted is None:
        fitted = _truncate(render(1, 0), limit)
    return fitted


def _date(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.date().isoformat()


# --------------------------------------------------------------------------------------------
# Review SLA
# --------------------------------------------------------------------------------------------


def sla_state(created_at: datetime, now: datetime, sla_hours: int) -> tuple[str, float]:
    """``("ok" | "due_soon" | "overdue", age_hours)``.

    ``due_soon`` from 75% of the SLA used; ``overdue`` once the age is strictly past the SLA
    (a package exactly at its deadline is still due_soon). A creation time in the future
    (clock skew) counts as age 0.
    """
    if isinstance(sla_hours, bool) or not isinstance(sla_hours, int) or sla_hours < 1:
        raise PolicyError(f"sla_hours must be a positive integer, got {sla_hours!r}")
    age_hours = max(0.0, (now - created_at).total_seconds() / 3600.0)
    if age_hours > sla_hours:
        return "overdue", age_hours
    if age_hours >= DUE_SOON_FRACTION * sla_hours:
        return "due_soon", age_hours
    return "ok", age_hours
