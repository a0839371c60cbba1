"""What one notification says, as plain text, whatever the channel: built from an outbox row's kind and facts.

Pure (no database): the sender passes each row with its package's link. Every channel escapes these plain
strings for its own format: the HTML e-mail through the template's autoescape (and ``one_line`` for the
subject), Slack through mrkdwn's ``&``/``<``/``>`` escapes, Teams by putting them only in TextRuns (which
render no markdown), generic webhooks as JSON values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from registry_app.models import NotificationKind

__all__ = [
    "EVENT_NAMES",
    "SECTION_TITLES",
    "Item",
    "digest_subject",
    "display_name",
    "item_for",
    "one_line",
    "sections",
]

SUBJECT_LIMIT = 200
K = NotificationKind

# The event names generic webhooks carry (X-Governance-Event and the payload's "event").
EVENT_NAMES: dict[str, str] = {
    K.REVIEW_REQUESTED: "review.requested",
    K.SLA_REMINDER: "review.overdue",
    K.DECIDED: "review.decided",
    K.REVOKED: "review.revoked",
    K.CONFLICT: "push.conflict",
    K.FINDING_RAISED: "finding.raised",
    K.REVALIDATION_DUE: "revalidation.due",
}

# Digest sections, in this order.
SECTION_TITLES: dict[str, str] = {
    K.CONFLICT: "Pushes NOT applied: changed outside the dashboard",
    K.REVOKED: "Approvals revoked",
    K.DECIDED: "Decided",
    K.SLA_REMINDER: "Past their review SLA",
    K.REVIEW_REQUESTED: "Waiting for review",
    K.FINDING_RAISED: "Findings raised",
    K.REVALIDATION_DUE: "Due for revalidation",
}


def one_line(text: Any, limit: int = SUBJECT_LIMIT) -> str:
    """Registry text made safe for a header or a list line: no CR/LF or other control characters, bounded."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in str(text))
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1].rstrip() + "…"


def display_name(user: Any | None) -> str:
    """How a person is named in a message: "Full Name (username)", or the policy when nobody decided."""
    if user is None:
        return "the governance policy"
    full = user.get_full_name().strip() if hasattr(user, "get_full_name") else ""
    username = user.get_username()
    return f"{full} ({username})" if full and full != username else username


@dataclass(frozen=True)
class Item:
    """One row, told: ``headline`` stands alone (a subject), ``summary`` follows the package's name in a list."""

    row_id: int
    kind: str
    event: str
    group: str
    version: int | None
    url: str
    headline: str
    summary: str
    facts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return f"{self.group} v{self.version}" if self.version is not None else self.group


def _roles(facts: Mapping[str, Any]) -> str:
    return ", ".join(one_line(role, 64) for role in facts.get("roles") or []) or "the required roles"


def _told(kind: str, title: str, facts: Mapping[str, Any]) -> tuple[str, str]:
    """(headline, summary) for ``kind``; unknown facts fall back to neutral words, never to an error."""
    f = facts
    if kind == K.REVIEW_REQUESTED:
        return (
            f"Review requested: {title}",
            f"needs review (policy {one_line(f.get('policy_name', ''), 64)}: {_roles(f)})",
        )
    if kind == K.SLA_REMINDER:
        hours = f.get("sla_hours", "?")
        return (
            f"Review overdue: {title} (SLA {hours}h)",
            f"waiting {f.get('age_days', '?')} days, past the {hours}-hour review SLA",
        )
    if kind in (K.DECIDED, K.REVOKED):
        verb, actor = one_line(f.get("verb", "decided"), 32), one_line(f.get("actor", "someone"), 120)
        status = one_line(f.get("target_status", ""), 32)
        return f"{title} {verb} by {actor}", f"{verb} by {actor}" + (f"; registry status to {status}" if status else "")
    if kind == K.CONFLICT:
        expected = one_line(f.get("expected_status") or "(none)", 40)
        found = one_line(f.get("found_status") or "unknown", 40)
        return (
            f"Push NOT applied: {title} was changed outside the dashboard",
            f"expected {expected} but found {found} in SageMaker; the dashboard's update was NOT applied",
        )
    if kind == K.FINDING_RAISED:
        what = one_line(f.get("title") or f.get("summary") or "a finding was raised", 160)
        if f.get("reminder"):
            due = one_line(f.get("due") or "soon", 40)
            return f"Finding due {due}: {title}", what
        return f"Finding raised: {title}", what
    if kind == K.REVALIDATION_DUE:
        due = one_line(f.get("due") or f.get("due_at") or "", 40)
        return f"Revalidation due: {title}", f"due for revalidation{f' on {due}' if due else ''}"
    return f"{one_line(kind, 40)}: {title}", one_line(kind, 40)


def item_for(
    *, row_id: int, kind: str, group: str, version: int | None, url: str, facts: Mapping[str, Any] | None
) -> Item:
    facts = facts if isinstance(facts, Mapping) else {}
    name = one_line(group, 170)
    title = f"{name} v{version}" if version is not None else name
    headline, summary = _told(kind, title, facts)
    return Item(
        row_id=row_id,
        kind=kind,
        event=EVENT_NAMES.get(kind, f"notification.{kind}"),
        group=name,
        version=version,
        url=url,
        headline=one_line(headline),
        summary=one_line(summary, 300),
        facts=facts,
    )


def sections(items: Iterable[Item]) -> list[tuple[str, list[Item]]]:
    """Items grouped by kind, in ``SECTION_TITLES`` order (unknown kinds last), oldest first within each."""
    by_kind: dict[str, list[Item]] = {}
    for item in items:
        by_kind.setdefault(item.kind, []).append(item)
    order = [*SECTION_TITLES, *sorted(set(by_kind) - set(SECTION_TITLES))]
    return [(SECTION_TITLES.get(kind, one_line(kind, 40)), by_kind[kind]) for kind in order if kind in by_kind]


def digest_subject(items: list[Item]) -> str:
    """The subject of a message that tells several rows at once."""
    kinds = {item.kind for item in items}
    if kinds == {K.REVIEW_REQUESTED}:
        return f"{len(items)} packages need your review"
    counts = ", ".join(f"{len(group)} {title.split(':')[0].lower()}" for title, group in sections(items))
    return one_line(f"{len(items)} notifications: {counts}")
