"""Published policy versions, read side: which version is in force for a group, its label, and
what changed between two versions (``policy_diff``, pure). Publishing is ``review.policy_publish``.

``policy_and_version(group)`` resolves exactly as ``policies.resolve_policy`` (one query: the
policy rows with their current version), so a service that needs the spec and the version to
record asks once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from registry_app.models import ApprovalPolicy, Decision, ModelPackageGroup, PolicyVersion
from registry_app.review.policies import policy_from_row, resolve_policy_row
from registry_app.review.policy import PolicySpec

__all__ = [
    "BUILT_IN_LABEL",
    "decided_under",
    "policy_and_version",
    "policy_at",
    "policy_diff",
    "policy_rows",
    "published_spec",
    "resolve_version",
    "spec_digest",
    "version_diff",
    "version_in_force",
    "version_label",
]

BUILT_IN_LABEL = "built-in default"

# The order the diff lists a policy's fields in (then anything else, sorted).
_FIELD_ORDER = (
    "name",
    "required_roles",
    "role_flags",
    "gates",
    "require_card_approved",
    "sla_hours",
    "accept_automated_approvals",
    "is_default",
    "group_name",
    "tag_key",
    "tag_value",
    "priority",
)


# --------------------------------------------------------------------------------------------- spec


def published_spec(row: ApprovalPolicy) -> dict[str, Any]:
    """The row's spec as it is published: ``PolicySpec.to_dict()`` of the row (``PolicyError`` if invalid)."""
    return policy_from_row(row).to_dict()


def spec_digest(spec: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of ``spec`` (sorted keys: PostgreSQL's jsonb does not keep key order)."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


# --------------------------------------------------------------------------------------------- in force


def policy_rows() -> Any:
    """The policy rows with their current version selected (one query when evaluated)."""
    return ApprovalPolicy.objects.select_related("current_version")


def resolve_version(
    rows: Iterable[ApprovalPolicy], group: ModelPackageGroup
) -> tuple[PolicySpec, PolicyVersion | None]:
    """The policy for ``group`` from loaded rows (``policy_rows()``), and its version in force
    (None: the built-in default, or a row never published). No query."""
    spec, row = resolve_policy_row(rows, group)
    return spec, (row.current_version if row is not None else None)


def policy_and_version(group: ModelPackageGroup) -> tuple[PolicySpec, PolicyVersion | None]:
    """The policy that applies to ``group`` and its version in force (one query)."""
    return resolve_version(policy_rows(), group)


def policy_at(group: ModelPackageGroup, at: dt.datetime) -> tuple[PolicySpec, PolicyVersion | None]:
    """The policy that applied to ``group`` at the past instant ``at`` and its version: the same
    resolution as ``policy_and_version`` over each policy's newest version published by ``at``, or
    its first version when it was published only later (what it said before versioning is not
    known; v1 is the oldest evidence). One query. The group's tags are today's; a policy deleted
    since is no longer known."""
    chosen: dict[int, PolicyVersion] = {}
    for version in PolicyVersion.objects.order_by("policy_id", "number"):
        if version.policy_id not in chosen or version.published_at <= at:
            chosen[version.policy_id] = version
    spec, row = resolve_policy_row(chosen.values(), group)
    return spec, row


def version_in_force(group: ModelPackageGroup) -> PolicyVersion | None:
    """The published version of the policy that applies to ``group`` now (one query); None when
    the built-in default applies. Record it on whatever a review produces (sign-off, decision,
    finding, revalidation)."""
    return policy_and_version(group)[1]


def version_label(version: PolicyVersion | None) -> str:
    """``high-risk v3``, or ``built-in default`` when no stored policy applied."""
    return version.label if version is not None else BUILT_IN_LABEL


def decided_under(decision: Decision) -> str:
    """``approved under high-risk v3`` (rejected, revoked, archived): what was decided, under which version."""
    verb = {
        Decision.Kind.REVOCATION: "revoked",
        Decision.Kind.ARCHIVE: "archived",
        Decision.Kind.REJECTION: "rejected",
    }.get(decision.kind, "approved" if decision.status == "Approved" else "rejected")
    return f"{verb} under {version_label(decision.policy_version)}"


# --------------------------------------------------------------------------------------------- diff


def _flatten(spec: Mapping[str, Any]) -> dict[str, Any]:
    """One level of nesting spelled out: ``required_roles.fairness``, ``accept_automated_approvals.principals``."""
    flat: dict[str, Any] = {}
    for key, value in spec.items():
        if isinstance(value, Mapping) and value:
            for sub, item in value.items():
                flat[f"{key}.{sub}"] = item
        else:
            flat[str(key)] = value
    return flat


def _order(name: str) -> tuple[int, str]:
    head = name.split(".", 1)[0]
    return (_FIELD_ORDER.index(head) if head in _FIELD_ORDER else len(_FIELD_ORDER), name)


def policy_diff(old_spec: Mapping[str, Any] | None, new_spec: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``[(field, old, new)]`` for every field that differs (None: absent), in a stable order.

    Dictionaries (roles, flags, automated approvals) are compared key by key
    (``required_roles.fairness``); lists (gates) as a whole. Pure.
    """
    old = _flatten(old_spec or {})
    new = _flatten(new_spec)
    changed = [name for name in set(old) | set(new) if old.get(name) != new.get(name)]
    return [(name, old.get(name), new.get(name)) for name in sorted(changed, key=_order)]


def version_diff(old: PolicyVersion | None, new: PolicyVersion) -> list[tuple[str, Any, Any]]:
    """What ``new`` changed from ``old`` (its predecessor): spec and scope fields."""
    before = {**old.spec, **old.scope} if old is not None else None
    return policy_diff(before, {**new.spec, **new.scope})
