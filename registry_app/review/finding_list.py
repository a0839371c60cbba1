"""Reading findings: which apply to a version (carried over from earlier ones), which block its
approval, who may act on each, and the text of an approval's conditions.

A finding raised on version N of a group applies to N and, while open (``open`` or
``in_remediation``), to every later version of the group: "carried over from vN". Closed and
accepted findings stay on the version they were raised on (history), and never block.

Reads only (the writes are ``review.findings``). Every function here runs a constant number of
queries whatever the number of findings: one per call, unless its docstring says otherwise.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from django.utils import timezone

from registry_app.models import Finding, ModelPackage
from registry_app.permissions import COMPLIANCE_ROLE, is_active_user, user_roles
from registry_app.review.policy import PolicySpec
from registry_app.review.policy.basics import ELLIPSIS, plain_text

__all__ = [
    "BlockingFinding",
    "applicable_findings",
    "blocking_by_package",
    "blocking_of",
    "can_accept_risk",
    "can_act",
    "can_raise",
    "conditions_of",
    "conditions_text",
    "finding_reason",
    "finding_refusal",
    "group_finding_summary",
    "is_owner",
    "is_overdue",
]


@dataclass(frozen=True)
class BlockingFinding:
    """An open finding that blocks approval of the versions it applies to (the verdict's input)."""

    pk: int
    title: str
    severity: str
    state: str
    version: int

    @property
    def ref(self) -> str:
        return f"F-{self.pk}"


def finding_reason(finding: BlockingFinding) -> str:
    """``finding F-12 "PSI drift on age" (high, open) blocks approval`` (``verdict.blocked_by``)."""
    state = finding.state.replace("_", " ")
    return f'finding {finding.ref} "{plain_text(finding.title)}" ({finding.severity}, {state}) blocks approval'


def finding_refusal(findings: Sequence[BlockingFinding]) -> str:
    """Why an approval is refused while blocking findings are open, and what may be done instead."""
    listed = "; ".join(finding_reason(f) for f in findings)
    return (
        f"Approval is blocked by open findings: {listed}. Close them with evidence (owner, raiser or "
        "compliance), have compliance accept them as a risk, or reject."
    )


# --------------------------------------------------------------------------------------------- applicability


def _open_blocking(group_ids: Iterable[int]) -> list[tuple[int, BlockingFinding]]:
    rows = Finding.objects.filter(
        group_id__in=sorted(set(group_ids)), state__in=Finding.OPEN_STATES, blocks_approval=True
    ).values_list("group_id", "pk", "title", "severity", "state", "package__version")
    return [
        (group_id, BlockingFinding(pk, title, sev, state, version)) for group_id, pk, title, sev, state, version in rows
    ]


def blocking_by_package(packages: Iterable[Any]) -> dict[int, list[BlockingFinding]]:
    """``{package id: open blocking findings applying to it}`` for packages (``pk``, ``group_id``,
    ``version``): one query for the whole batch, none when ``packages`` is empty."""
    packages = list(packages)
    if not packages:
        return {}
    by_group: dict[int, list[BlockingFinding]] = defaultdict(list)
    for group_id, finding in _open_blocking(p.group_id for p in packages):
        by_group[group_id].append(finding)
    return {
        p.pk: sorted((f for f in by_group[p.group_id] if f.version <= p.version), key=lambda f: f.pk) for p in packages
    }


def blocking_of(findings: Iterable[Finding]) -> list[BlockingFinding]:
    """The open blocking ones among Finding rows (``package`` selected with them), by id."""
    return sorted(
        (
            BlockingFinding(f.pk, f.title, f.severity, f.state, f.package.version)
            for f in findings
            if f.is_open and f.blocks_approval
        ),
        key=lambda f: f.pk,
    )


def _applicable(package: ModelPackage) -> Q:
    own = Q(package_id=package.pk)
    carried = Q(group_id=package.group_id, package__version__lt=package.version, state__in=Finding.OPEN_STATES)
    return own | carried


def applicable_findings(package: ModelPackage, user: Any, *, today: dt.date | None = None) -> list[Finding]:
    """The findings shown on ``package``'s review page: its own (any state) and the open ones carried
    over from earlier versions; each with ``carried_over_from`` (a version or None), ``overdue`` and
    what ``user`` may do (``can_remediate``, ``can_close``, ``can_accept``). One query (the user's
    roles are cached per request)."""
    today = today or timezone.localdate()
    rows = list(
        Finding.objects.filter(_applicable(package))
        .select_related("owner", "raised_by", "closed_by", "package")
        .order_by("-blocks_approval", "state", "due_date", "pk")
    )
    held = user_roles(user)
    for f in rows:
        annotate(f, user, held, today=today)
        f.carried_over_from = f.package.version if f.package_id != package.pk else None  # type: ignore[attr-defined]
    return rows


def annotate(finding: Finding, user: Any, held: set[str], *, today: dt.date) -> Finding:
    """Set ``overdue`` and the permission flags on ``finding`` (no query)."""
    finding.overdue = is_overdue(finding, today)  # type: ignore[attr-defined]
    acting = finding.is_open and can_act(finding, user, held)
    finding.can_remediate = acting and finding.state == Finding.State.OPEN  # type: ignore[attr-defined]
    finding.can_close = acting  # type: ignore[attr-defined]
    finding.can_accept = finding.is_open and can_accept_risk(user, held)  # type: ignore[attr-defined]
    return finding


def is_overdue(finding: Finding, today: dt.date) -> bool:
    return finding.is_open and finding.due_date is not None and finding.due_date < today


# --------------------------------------------------------------------------------------------- permissions


def can_raise(user: Any, policy: PolicySpec, held: set[str] | None = None) -> bool:
    """Any holder of a reviewer role of the package's policy, or staff."""
    if not is_active_user(user):
        return False
    held = user_roles(user) if held is None else held
    return bool(getattr(user, "is_staff", False)) or bool(held & set(policy.required_roles))


def is_owner(finding: Finding, user: Any) -> bool:
    """The owning user, or a user whose e-mail is the owning team address."""
    if finding.owner_id is not None and finding.owner_id == user.pk:
        return True
    email = (getattr(user, "email", "") or "").strip().casefold()
    return bool(email) and email == (finding.owner_email or "").strip().casefold()


def can_act(finding: Finding, user: Any, held: set[str] | None = None) -> bool:
    """Move to remediation or close: the owner, the raiser, or compliance."""
    if not is_active_user(user):
        return False
    held = user_roles(user) if held is None else held
    return is_owner(finding, user) or finding.raised_by_id == user.pk or COMPLIANCE_ROLE in held


def can_accept_risk(user: Any, held: set[str] | None = None) -> bool:
    """Accept a finding as a risk: the compliance role only."""
    if not is_active_user(user):
        return False
    held = user_roles(user) if held is None else held
    return COMPLIANCE_ROLE in held


# --------------------------------------------------------------------------------------------- conditions


def conditions_of(package_ids: Sequence[int]) -> dict[int, list[Finding]]:
    """``{package id: the conditions of its approval}``: the findings linked to its current (not
    withdrawn, not stale) approve sign-offs, oldest first. One query, none for no ids."""
    if not package_ids:
        return {}
    rows = (
        Finding.condition_of.through.objects.filter(
            signoff__package_id__in=list(package_ids),
            signoff__withdrawn_at__isnull=True,
            signoff__stale_at__isnull=True,
            signoff__decision="approve",
        )
        .select_related("finding__owner", "signoff")
        .order_by("finding_id")
    )
    found: dict[int, list[Finding]] = defaultdict(list)
    seen: set[tuple[int, int]] = set()
    for link in rows:
        key = (link.signoff.package_id, link.finding_id)
        if key not in seen:
            seen.add(key)
            found[link.signoff.package_id].append(link.finding)
    return dict(found)


def _condition(finding: Finding, title_cap: int) -> str:
    title = plain_text(finding.title)
    if len(title) > title_cap:
        title = title[: max(title_cap - 1, 1)].rstrip() + ELLIPSIS
    due = f" (due {finding.due_date.isoformat()})" if finding.due_date else ""
    return f"{finding.ref} {title}{due}"


def conditions_text(findings: Sequence[Finding], url: str, limit: int) -> str:
    """``Conditions: F-12 monitor DPPL monthly (due 2027-03-01); … See <url>``, within ``limit``
    characters: titles are shortened first, then conditions dropped (``+N more``), then the URL.
    Blank when there are no conditions."""
    if not findings or limit <= 0:
        return ""
    tail = f" See {url}" if url else ""
    longest = max(len(plain_text(f.title)) for f in findings)
    for cap in (longest, 80, 40, 20, 8):
        text = "Conditions: " + "; ".join(_condition(f, cap) for f in findings) + "." + tail
        if len(text) <= limit:
            return text
    for shown in range(len(findings) - 1, 0, -1):
        more = len(findings) - shown
        text = "Conditions: " + "; ".join(_condition(f, 8) for f in findings[:shown]) + f"; +{more} more." + tail
        if len(text) <= limit:
            return text
    text = f"Conditions: {len(findings)}, see the review page.{tail}"
    if len(text) <= limit:
        return text
    text = f"Conditions: {len(findings)}."
    return text if len(text) <= limit else ""


# --------------------------------------------------------------------------------------------- group page


@dataclass(frozen=True)
class VersionFindings:
    """The group page's findings column for one version."""

    open: int
    highest: str  # the highest severity among the open findings applying to it ("" when none)
    overdue: int


def group_finding_summary(
    group_id: int, versions: Iterable[int], *, today: dt.date | None = None
) -> dict[int, VersionFindings]:
    """``{version: VersionFindings}`` over the open findings applying to each version (carried over
    included). One query: the group's open findings."""
    today = today or timezone.localdate()
    rows = list(
        Finding.objects.filter(group_id=group_id, state__in=Finding.OPEN_STATES).values_list(
            "package__version", "severity", "due_date"
        )
    )
    summary: dict[int, VersionFindings] = {}
    for version in versions:
        applying = [(sev, due) for v, sev, due in rows if v <= version]
        if not applying:
            continue
        highest = max((sev for sev, _ in applying), key=lambda s: Finding.SEVERITY_RANK.get(s, 0))
        overdue = sum(1 for _, due in applying if due is not None and due < today)
        summary[version] = VersionFindings(len(applying), highest, overdue)
    return summary


# --------------------------------------------------------------------------------------------- lookups


def find_finding(user: Any, finding_id: int) -> Finding | None:
    """The finding (package, group and source selected) when ``user`` may see it: every active user
    sees every package (``mirror.lookups.find_package``). One query."""
    if not is_active_user(user):
        return None
    return Finding.objects.select_related("package__group__source").filter(pk=finding_id).first()


def user_id_by_username(username: str) -> int | None:
    """The active user named ``username`` (case-insensitive), for an owner typed into a form."""
    from django.contrib.auth import get_user_model

    model = get_user_model()
    found = model.objects.filter(**{f"{model.USERNAME_FIELD}__iexact": username.strip(), "is_active": True})
    return found.values_list("pk", flat=True).first()
