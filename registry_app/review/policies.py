"""Stored approval policies: ``policy_for_group`` resolves the ``ApprovalPolicy`` rows for a group
(one query); ``policy_from_row`` / ``resolve_policy`` do it for rows already loaded. The
fingerprint of what a reviewer reviews lives in ``review.state``."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

from registry_app.models import ApprovalPolicy, ModelPackageGroup
from registry_app.review.policy import (
    DEFAULT_POLICY,
    PolicyError,
    PolicyOverride,
    PolicySpec,
    select_policy,
)

__all__ = [
    "policy_for_group",
    "policy_from_row",
    "resolve_policy",
    "resolve_policy_row",
]


class PolicyFields(Protocol):
    """What resolution reads of a policy: an ``ApprovalPolicy`` row, or a ``PolicyVersion`` (as published)."""

    name: str
    spec: Any
    is_default: bool
    group_name: str
    tag_key: str
    tag_value: str
    priority: int


Row = TypeVar("Row", bound=PolicyFields)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------- policies


def policy_from_row(row: PolicyFields) -> PolicySpec:
    """The row's spec as a ``PolicySpec``; the row name stands in when the spec has none."""
    data: dict[str, Any] = dict(row.spec) if isinstance(row.spec, dict) else {}
    data.setdefault("name", row.name)
    return PolicySpec.from_dict(data)


def resolve_policy(rows: Iterable[ApprovalPolicy], group: ModelPackageGroup) -> PolicySpec:
    """Pick the policy for ``group`` from already loaded rows (no query).

    A group-name override beats a tag override (e.g. ``RiskTier=High``), which beats the
    ``is_default`` row, which beats ``registry_app.review.policy.DEFAULT_POLICY``. Invalid rows (the admin
    form refuses them, so only a hand-edited database has them) are skipped with a warning.
    """
    return resolve_policy_row(rows, group)[0]


def resolve_policy_row(rows: Iterable[Row], group: ModelPackageGroup) -> tuple[PolicySpec, Row | None]:
    """``resolve_policy``, and the row it chose (None: the built-in ``DEFAULT_POLICY``). ``rows`` are
    ``ApprovalPolicy`` rows or anything with their fields (a ``PolicyVersion``: name, spec and scope)."""
    default = DEFAULT_POLICY
    default_row: Row | None = None
    overrides: list[PolicyOverride] = []
    chosen: dict[int, Row] = {}
    for row in rows:
        try:
            spec = policy_from_row(row)
            if row.is_default:
                default, default_row = spec, row
            elif row.tag_key:
                overrides.append(
                    PolicyOverride(spec, tag_key=row.tag_key, tag_value=row.tag_value, priority=row.priority)
                )
                chosen[id(spec)] = row
            elif row.group_name:
                overrides.append(PolicyOverride(spec, group_name=row.group_name, priority=row.priority))
                chosen[id(spec)] = row
        except PolicyError:
            log.warning("ignoring invalid approval policy %r", row.name, exc_info=True)
    spec = select_policy(group.name, _tags(group.tags), overrides, default)
    return spec, chosen.get(id(spec), default_row if spec is default else None)


def policy_for_group(group: ModelPackageGroup) -> PolicySpec:
    """The approval policy that applies to ``group`` (one query)."""
    return resolve_policy(ApprovalPolicy.objects.all(), group)


def _tags(tags: Any) -> dict[str, str]:
    if isinstance(tags, dict):
        return {str(k): "" if v is None else str(v) for k, v in tags.items()}
    return {}
