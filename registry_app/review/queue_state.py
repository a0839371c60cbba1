"""Keeping the stored review state exact: ``ReviewState`` rows written from ``review.review_rows``.

Every writer that changes an input of a package's verdict calls ``review_state_refresh`` inside its
own transaction, after its change, so the row commits (or rolls back) with it:

* a sign-off (``review.signoffs``), a revocation or an archive (``review.decisions``);
* a decision push delivered, conflicting, or retried (``review.push``): the effective status moves;
* what the sync observed (``review.on_sync``): a package created, changed, restored or gone, its
  reports and metrics, its card link, a card's status or content, a group's tags or state;
* a policy saved or deleted (``review.receivers``): ``review_state_refresh_policies`` refreshes the
  rows whose policy changed.

Role grants change no row: a row holds what every reviewer shares (missing roles, current signers,
registrant names); the queue matches it against the roles of the person asking when it reads.

``review_state_refresh`` first locks the package rows (``SELECT ... FOR UPDATE``, id order), then
reads the inputs. Every writer holds that lock when it refreshes, so of two transactions changing
one package the later to take the lock reads what the earlier committed: the last row written is
computed from everything committed. ``review_state_verify`` (nightly) re-derives every row, counts
and fixes any difference, and records a ``ReviewStateCheck`` (exposed on /metrics).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from registry_app.models import ApprovalPolicy, ModelPackage, ReviewState, ReviewStateCheck, ReviewStateRole
from registry_app.review.policies import resolve_policy
from registry_app.review.review_rows import ReviewRow, RoleRow, derive_rows, policy_digest, under_review

__all__ = [
    "RefreshStats",
    "review_state_forget",
    "review_state_refresh",
    "review_state_refresh_group",
    "review_state_refresh_policies",
    "review_state_verify",
]

log = logging.getLogger(__name__)

BATCH = 1000  # packages derived per round (ids in one IN list, model instances held at once)
DETAIL_KEPT = 50  # differences described on a ReviewStateCheck

# Columns compared and written (the primary key aside); ``computed_at`` changes on every write only.
_FIELDS = tuple(f for f in ReviewRow.__dataclass_fields__ if f not in ("package_id", "roles"))


@dataclass
class RefreshStats:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    differences: list[dict[str, Any]] = field(default_factory=list)  # what was wrong before the write

    @property
    def changed(self) -> int:
        return self.created + self.updated + self.deleted

    def add(self, other: RefreshStats) -> None:
        self.created += other.created
        self.updated += other.updated
        self.deleted += other.deleted
        self.unchanged += other.unchanged
        self.differences += other.differences


# --------------------------------------------------------------------------------------------- refresh


def review_state_refresh(package_ids: Iterable[int], *, policies: list[ApprovalPolicy] | None = None) -> RefreshStats:
    """Make the stored rows of ``package_ids`` what ``review_rows.derive_rows`` says: created,
    updated, or deleted when the package is no longer under review; untouched when right.

    Runs in the caller's transaction (a savepoint of its own when there is none), under the package
    row locks. Queries: the lock, ``derive_rows`` (7), the stored rows and their roles (2), then only
    the writes needed. ``policies`` saves their query.
    """
    ids = sorted({int(pk) for pk in package_ids})
    stats = RefreshStats()
    for lo in range(0, len(ids), BATCH):
        with transaction.atomic():
            stats.add(_refresh_batch(ids[lo : lo + BATCH], policies))
    return stats


def _refresh_batch(ids: list[int], policies: list[ApprovalPolicy] | None) -> RefreshStats:
    # The lock first: every input read below is read after the last writer of these packages committed.
    list(ModelPackage.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))
    derived = derive_rows(ids, policies=policies)
    stored = _stored(ids)
    return _apply(derived, stored)


def review_state_forget(package_ids: list[int]) -> int:
    """Delete the rows of packages the caller knows are not under review (decided in the registry,
    or deleted): the sync's fast path for the 80 % of packages that are not pending. 2 queries,
    no lock: a writer that still sees such a package pending waits for the caller's row lock and
    then reads it decided (the refresh locks before it reads)."""
    if not package_ids:
        return 0
    ReviewStateRole.objects.filter(state_id__in=package_ids).delete()
    return int(ReviewState.objects.filter(package_id__in=package_ids).delete()[0])


def review_state_refresh_group(group_id: int) -> RefreshStats:
    """Every row of the group's packages (its tags choose the policy, its state the membership)."""
    ids = set(ModelPackage.objects.filter(group_id=group_id).filter(under_review()).values_list("pk", flat=True))
    ids.update(ReviewState.objects.filter(group_id=group_id).values_list("package_id", flat=True))
    return review_state_refresh(ids)


def review_state_refresh_policies() -> RefreshStats:
    """After a policy was saved or deleted: refresh the rows whose group now resolves to another
    policy (or to the same one changed). Reads every row's group name and tags (no package)."""
    policies = list(ApprovalPolicy.objects.all())
    digests: dict[tuple[str, str], str] = {}
    stale: list[int] = []
    for package_id, name, tags, digest in ReviewState.objects.values_list(
        "package_id", "group_name", "group_tags", "policy_digest"
    ).iterator(chunk_size=5000):
        key = (name, repr(sorted(tags.items())) if isinstance(tags, dict) else "")
        if key not in digests:
            digests[key] = policy_digest(resolve_policy(policies, _GroupLike(name, tags)))  # type: ignore[arg-type]
        if digests[key] != digest:
            stale.append(package_id)
    return review_state_refresh(stale, policies=policies)


@dataclass(frozen=True)
class _GroupLike:
    """What ``resolve_policy`` reads of a group."""

    name: str
    tags: Any


# --------------------------------------------------------------------------------------------- verify


def review_state_verify(*, fix: bool = True) -> ReviewStateCheck:
    """Re-derive the row of every package under review (and of every stored row), count the rows
    missing, extra or different, fix them (unless ``fix`` is False) and record a ``ReviewStateCheck``.

    Batches of ``BATCH`` packages, each in its own transaction under the package locks, so a
    writer that is mid-change is waited for rather than counted as a difference.
    """
    check = ReviewStateCheck.objects.create(started_at=timezone.now())
    ids = set(ModelPackage.objects.filter(under_review()).values_list("pk", flat=True))
    ids.update(ReviewState.objects.values_list("package_id", flat=True))
    ordered = sorted(ids)
    policies = list(ApprovalPolicy.objects.all())
    total = RefreshStats()
    for lo in range(0, len(ordered), BATCH):
        batch = ordered[lo : lo + BATCH]
        with transaction.atomic():
            list(
                ModelPackage.objects.select_for_update()
                .filter(pk__in=batch)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            derived = derive_rows(batch, policies=policies)
            stored = _stored(batch)
            if fix:
                total.add(_apply(derived, stored))
            else:
                total.differences += _differences(derived, stored)
    check.checked = len(ordered)
    check.differences = len(total.differences)
    check.detail = total.differences[:DETAIL_KEPT]
    check.finished_at = timezone.now()
    check.save(update_fields=["checked", "differences", "detail", "finished_at"])
    if check.differences:
        log.warning("review state check: %d row(s) differed%s", check.differences, " and were fixed" if fix else "")
    return check


# --------------------------------------------------------------------------------------------- rows


def _stored(ids: list[int]) -> dict[int, ReviewRow]:
    """The stored rows of ``ids`` as ``ReviewRow`` values (2 queries)."""
    roles: dict[int, list[RoleRow]] = {}
    for state_id, role, needed, approvals, missing in (
        ReviewStateRole.objects.filter(state_id__in=ids)
        .order_by("state_id", "pk")
        .values_list("state_id", "role", "needed", "approvals", "missing")
    ):
        roles.setdefault(state_id, []).append(RoleRow(role, needed, approvals, missing))
    stored: dict[int, ReviewRow] = {}
    for values in ReviewState.objects.filter(package_id__in=ids).values("package_id", *_FIELDS):
        values["missing_roles"] = tuple(values["missing_roles"] or ())
        stored[values["package_id"]] = ReviewRow(**values, roles=tuple(roles.get(values["package_id"], ())))
    return stored


def _diff(derived: ReviewRow, stored: ReviewRow) -> list[str]:
    names = [f for f in _FIELDS if getattr(derived, f) != getattr(stored, f)]
    if derived.roles != stored.roles:
        names.append("roles")
    return names


def _differences(derived: dict[int, ReviewRow], stored: dict[int, ReviewRow]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for pk in sorted(set(derived) | set(stored)):
        if pk not in stored:
            out.append({"package_id": pk, "kind": "missing"})
        elif pk not in derived:
            out.append({"package_id": pk, "kind": "extra"})
        elif fields := _diff(derived[pk], stored[pk]):
            out.append({"package_id": pk, "kind": "different", "fields": fields})
    return out


def _apply(derived: dict[int, ReviewRow], stored: dict[int, ReviewRow]) -> RefreshStats:
    """Write what differs: delete extra rows, create missing ones, update changed ones (their role
    rows replaced). Bulk statements, a constant number of them."""
    stats = RefreshStats(differences=_differences(derived, stored))
    kinds = {d["package_id"]: d["kind"] for d in stats.differences}
    stats.unchanged = len(derived) - sum(1 for k in kinds.values() if k != "extra")
    extra = [pk for pk, kind in kinds.items() if kind == "extra"]
    changed = [derived[pk] for pk, kind in kinds.items() if kind == "different"]
    missing = [derived[pk] for pk, kind in kinds.items() if kind == "missing"]
    if extra:
        review_state_forget(extra)
    now = timezone.now()
    if changed:
        # Replaced rather than updated: Django's bulk_update writes one CASE WHEN per field and row,
        # which costs ~2 ms of Python a row (a policy edit touching 2,000 rows spent 4 s building it).
        # The row is keyed by its package and only its roles point at it; same transaction.
        changed_ids = [r.package_id for r in changed]
        ReviewStateRole.objects.filter(state_id__in=changed_ids).delete()
        ReviewState.objects.filter(package_id__in=changed_ids).delete()
    if changed or missing:
        ReviewState.objects.bulk_create(
            [ReviewState(**row.state_fields(), computed_at=now) for row in (*changed, *missing)]
        )
    if changed or missing:
        ReviewStateRole.objects.bulk_create(
            ReviewStateRole(
                state_id=row.package_id, role=r.role, needed=r.needed, approvals=r.approvals, missing=r.missing
            )
            for row in (*changed, *missing)
            for r in row.roles
        )
    stats.deleted, stats.updated, stats.created = len(extra), len(changed), len(missing)
    return stats
