"""What a push writes: the UpdateModelPackage parameters for an outbox row, from a fresh describe (pure).

Only what the dashboard owns is sent. AWS keeps every field an update leaves out and *merges*
``CustomerMetadataProperties`` into the package's map (``CustomerMetadataPropertiesToRemove``
deletes keys): echoing the whole map back, as a client of moto (which blanks what is left out)
might, would silently restore a key a pipeline changed or removed between the describe and the
update. So a flags push sends only its role flags (never the status or description), a decision
push its status, description and flags, and a flag withdrawn (value ``None`` in ``push.flags``)
goes in ``CustomerMetadataPropertiesToRemove`` when the registry still has it.
"""

from __future__ import annotations

from typing import Any

from registry_app.models import PushOutbox
from registry_app.permissions import principal_names

__all__ = [
    "MAX_DESCRIPTION",
    "MAX_METADATA_ENTRIES",
    "PushRefused",
    "already_applied",
    "conflict_detail",
    "fit",
    "intended",
]

Kind = PushOutbox.Kind

MAX_METADATA_ENTRIES = 50
MAX_METADATA_KEY = 128
MAX_METADATA_VALUE = 256
MAX_DESCRIPTION = 1024


class PushRefused(Exception):
    """The intended state cannot be written (e.g. the metadata limits); retrying will not help."""


def fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _split_flags(push: PushOutbox) -> tuple[dict[str, str], list[str]]:
    """``(to set, to remove)`` from ``push.flags`` (``None`` withdraws a flag)."""
    to_set: dict[str, str] = {}
    to_remove: list[str] = []
    for key, value in (push.flags or {}).items():
        key = str(key)
        if value is None:
            to_remove.append(key)
            continue
        value = str(value)
        if not 1 <= len(key) <= MAX_METADATA_KEY or not 1 <= len(value) <= MAX_METADATA_VALUE:
            raise PushRefused(
                f"Metadata {key[:40]!r}={value[:40]!r} exceeds SageMaker's limits "
                f"(key 1-{MAX_METADATA_KEY}, value 1-{MAX_METADATA_VALUE} characters)."
            )
        to_set[key] = value
    return to_set, to_remove


def intended(push: PushOutbox, record: dict[str, Any]) -> dict[str, Any]:
    """UpdateModelPackage parameters (without ClientToken) for what this row owns, given ``record``
    (a fresh DescribeModelPackage). Raises ``PushRefused`` when SageMaker's limits would be exceeded."""
    current = {str(k): str(v) for k, v in (record.get("CustomerMetadataProperties") or {}).items()}
    to_set, to_remove = _split_flags(push)
    to_remove = [key for key in to_remove if key in current and key not in to_set]
    after = (set(current) | set(to_set)) - set(to_remove)
    if len(after) > MAX_METADATA_ENTRIES:
        raise PushRefused(
            f"The package would have {len(after)} CustomerMetadataProperties; SageMaker allows "
            f"{MAX_METADATA_ENTRIES}. Remove unused keys in the registry, then retry this push."
        )
    params: dict[str, Any] = {"ModelPackageArn": push.package.arn}
    if push.kind == Kind.DECISION:
        params["ModelApprovalStatus"] = push.target_status
        params["ApprovalDescription"] = fit(push.target_description, MAX_DESCRIPTION)
    if to_set:
        params["CustomerMetadataProperties"] = to_set
    if to_remove:
        params["CustomerMetadataPropertiesToRemove"] = to_remove
    return params


def already_applied(params: dict[str, Any], record: dict[str, Any], push: PushOutbox) -> bool:
    """Whether the registry already shows what ``params`` would write (a worker died after the call)."""
    if push.kind == Kind.DECISION:
        if params.get("ModelApprovalStatus", "") != str(record.get("ModelApprovalStatus") or ""):
            return False
        if params.get("ApprovalDescription", "") != str(record.get("ApprovalDescription") or ""):
            return False
    current = record.get("CustomerMetadataProperties") or {}
    if any(current.get(k) != v for k, v in params.get("CustomerMetadataProperties", {}).items()):
        return False
    return not params.get("CustomerMetadataPropertiesToRemove")


def conflict_detail(push: PushOutbox, record: dict[str, Any]) -> dict[str, Any]:
    modified_by = record.get("LastModifiedBy") or {}
    names = principal_names(modified_by)
    iam = modified_by.get("IamIdentity") if isinstance(modified_by, dict) else None
    return {
        "found_status": str(record.get("ModelApprovalStatus") or ""),
        "found_description": str(record.get("ApprovalDescription") or ""),
        "last_modified_by": names[0] if names else str((iam or {}).get("Arn") or ""),
        "last_modified_at": str(record.get("LastModifiedTime") or ""),
        "expected_status": push.expected_status,
        "target_status": push.target_status,
    }
