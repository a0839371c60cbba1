"""Stored approval policies, and the fingerprint of what a reviewer reviews.

``policy_for_group`` resolves the ``ApprovalPolicy`` rows for a group (one query).
``package_fingerprint`` hashes the reviewed content of a package; a sign-off stores it, and a
sign-off whose fingerprint no longer matches is stale and must be redone.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from typing import Any

from registry_app.mirror import cards
from registry_app.models import ApprovalPolicy, EvaluationReport, ModelPackage, ModelPackageGroup
from registry_app.review.policy import (
    DEFAULT_POLICY,
    DEFAULT_ROLE_FLAGS,
    PolicyError,
    PolicyOverride,
    PolicySpec,
    select_policy,
)

__all__ = [
    "APPROVAL_METADATA_KEYS",
    "FINGERPRINT_VERSION",
    "package_fingerprint",
    "policy_for_group",
    "policy_from_row",
    "resolve_policy",
]

log = logging.getLogger(__name__)

FINGERPRINT_VERSION = 1
# Keys the dashboard itself may write next to the role flags; never part of what is reviewed.
APPROVAL_METADATA_KEYS = frozenset({"ApprovalStatus", "ApprovalDescription", "ModelApprovalStatus"})


# --------------------------------------------------------------------------------------------- policies


def policy_from_row(row: ApprovalPolicy) -> PolicySpec:
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
    default = DEFAULT_POLICY
    overrides: list[PolicyOverride] = []
    for row in rows:
        try:
            spec = policy_from_row(row)
            if row.is_default:
                default = spec
            elif row.tag_key:
                overrides.append(
                    PolicyOverride(spec, tag_key=row.tag_key, tag_value=row.tag_value, priority=row.priority)
                )
            elif row.group_name:
                overrides.append(PolicyOverride(spec, group_name=row.group_name, priority=row.priority))
        except PolicyError:
            log.warning("ignoring invalid approval policy %r", row.name, exc_info=True)
    return select_policy(group.name, _tags(group.tags), overrides, default)


def policy_for_group(group: ModelPackageGroup) -> PolicySpec:
    """The approval policy that applies to ``group`` (one query)."""
    return resolve_policy(ApprovalPolicy.objects.all(), group)


def _tags(tags: Any) -> dict[str, str]:
    if isinstance(tags, dict):
        return {str(k): "" if v is None else str(v) for k, v in tags.items()}
    return {}


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


def _reports_part(reports: Iterable[EvaluationReport]) -> dict[str, str]:
    return {
        report.slot: (f"sha256:{report.sha256}" if report.sha256 else report.content_digest or report.s3_uri)
        for report in reports
    }


def package_fingerprint(
    package: ModelPackage,
    *,
    policy: PolicySpec | None = None,
    reports: Iterable[EvaluationReport] | None = None,
) -> tuple[str, dict]:
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
