"""Pure mapping from SageMaker API records to mirror rows, and change detection.

No boto3, no ORM writes: every function takes and returns plain data, so the rules that
decide what the mirror stores (and what counts as a change) are testable without AWS.
Records arrive JSON-safe (timestamps as ISO-8601 strings or epoch numbers), whether they
come from DescribeModelPackage, Search or an EventBridge event's ``detail``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# Keys that say nothing about the package itself, or that only one of the two record sources carries, and
# so must not register as a change: the same package reads alike from Search and from Describe (botocore:
# ``SearchRecord.ModelPackage`` adds ``Tags``; ``DescribeModelPackageOutput`` adds ``ManagedStorageType``),
# and a full pass (Search) never rewrites what an incremental pass (Describe) stored, or the reverse.
VOLATILE_KEYS = frozenset({"ResponseMetadata", "Tags", "ManagedStorageType"})

# Mirror fields whose change is recorded as a PackageObservation.
TRACKED_FIELDS = (
    "approval_status",
    "approval_description",
    "package_status",
    "description",
    "lifecycle_stage",
    "lifecycle_stage_status",
    "lifecycle_stage_description",
    "customer_metadata",
    "metadata_properties",
    "model_metrics",
    "inference_specification",
    "embedded_card_status",
    "embedded_card_content",
    "last_modified_at",
    "last_modified_by",
)

# Summary fields (ListModelPackages) compared with the mirror to decide whether to describe.
SUMMARY_FIELDS = {
    "ModelApprovalStatus": "approval_status",
    "ModelPackageStatus": "package_status",
    "ModelPackageDescription": "description",
}


class RecordError(ValueError):
    """A registry record that cannot be mirrored (missing ARN, bad version...)."""


@dataclass(frozen=True)
class Arn:
    partition: str
    service: str
    region: str
    account: str
    resource_type: str
    resource: str


def parse_arn(arn: str) -> Arn:
    parts = (arn or "").split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise RecordError(f"not an ARN: {arn[:200]!r}")
    resource_type, _, resource = parts[5].partition("/")
    return Arn(parts[1], parts[2], parts[3], parts[4], resource_type, resource)


def group_arn_for_package(package_arn: str, group_name: str) -> str:
    arn = parse_arn(package_arn)
    return f"arn:{arn.partition}:sagemaker:{arn.region}:{arn.account}:model-package-group/{group_name}"


def parse_time(value: Any) -> dt.datetime | None:
    """ISO-8601 (any precision, ``Z`` or offset) or epoch seconds/milliseconds → aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, int | float) or (isinstance(value, str) and value.replace(".", "", 1).isdigit()):
        number = float(value)
        if number > 1e11:  # epoch milliseconds (EventBridge endpoint events)
            number /= 1000.0
        return dt.datetime.fromtimestamp(number, tz=dt.UTC)
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        # Nanosecond timestamps (model card events) exceed what fromisoformat keeps: trim to micros.
        if "." in text:
            head, _, tail = text.partition(".")
            digits = "".join(ch for ch in tail if ch.isdigit())
            rest = tail[len(digits) :]
            text = f"{head}.{digits[:6]}{rest}"
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError as exc:
            raise RecordError(f"unparseable timestamp {value!r}") from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    raise RecordError(f"unparseable timestamp {value!r}")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(
        canonical_json({k: v for k, v in record.items() if k not in VOLATILE_KEYS}).encode()
    ).hexdigest()


def _card(record: dict[str, Any]) -> tuple[str, Any]:
    card = record.get("ModelCard") or {}
    status = str(card.get("ModelCardStatus") or "")
    content = card.get("ModelCardContent")
    if isinstance(content, str) and content:
        try:
            content = json.loads(content)
        except ValueError:
            content = {"_unparsed": content[:100_000]}
    return status, content if content else None


def package_fields(record: dict[str, Any]) -> dict[str, Any]:
    """Mirror column values for a package record (Describe/Search/EventBridge detail)."""
    arn = record.get("ModelPackageArn")
    if not arn or not isinstance(arn, str):
        raise RecordError("record has no ModelPackageArn")
    version = record.get("ModelPackageVersion")
    if version is None:
        # Versioned package ARNs end in /<group>/<version>.
        tail = parse_arn(arn).resource.rsplit("/", 1)[-1]
        version = tail if tail.isdigit() else None
    try:
        version_int = int(version)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise RecordError(f"{arn}: no valid ModelPackageVersion (unversioned packages are not mirrored)") from exc
    # The record's name keeps the group's case; the ARN's is lower-cased (``FraudModel`` ->
    # ``model-package/fraudmodel/3``), so it is only a last resort.
    group_name = record.get("ModelPackageGroupName") or parse_arn(arn).resource.rsplit("/", 1)[0]
    lifecycle = record.get("ModelLifeCycle") or {}
    card_status, card_content = _card(record)
    return {
        "arn": arn,
        "group_name": str(group_name),
        "version": version_int,
        "description": str(record.get("ModelPackageDescription") or ""),
        "approval_status": str(record.get("ModelApprovalStatus") or ""),
        "approval_description": str(record.get("ApprovalDescription") or ""),
        "package_status": str(record.get("ModelPackageStatus") or ""),
        "registration_type": str(record.get("ModelPackageRegistrationType") or ""),
        "lifecycle_stage": str(lifecycle.get("Stage") or ""),
        "lifecycle_stage_status": str(lifecycle.get("StageStatus") or ""),
        "lifecycle_stage_description": str(lifecycle.get("StageDescription") or ""),
        "created_at": parse_time(record.get("CreationTime")),
        "created_by": record.get("CreatedBy") or {},
        "last_modified_at": parse_time(record.get("LastModifiedTime")),
        "last_modified_by": record.get("LastModifiedBy") or {},
        "inference_specification": record.get("InferenceSpecification") or {},
        "customer_metadata": record.get("CustomerMetadataProperties") or {},
        "metadata_properties": record.get("MetadataProperties") or {},
        "model_metrics": record.get("ModelMetrics") or {},
        "embedded_card_status": card_status,
        "embedded_card_content": card_content,
        "raw": {k: v for k, v in record.items() if k not in VOLATILE_KEYS},
        "content_hash": record_hash(record),
    }


def group_fields(summary: dict[str, Any], tags: dict[str, str] | None = None) -> dict[str, Any]:
    arn = summary.get("ModelPackageGroupArn")
    name = summary.get("ModelPackageGroupName")
    if not arn or not name:
        raise RecordError("group record lacks ModelPackageGroupArn/ModelPackageGroupName")
    fields: dict[str, Any] = {
        "arn": arn,
        "name": name,
        "owner_account": parse_arn(arn).account,
        "description": str(summary.get("ModelPackageGroupDescription") or ""),
        "status": str(summary.get("ModelPackageGroupStatus") or ""),
        "created_at": parse_time(summary.get("CreationTime")),
    }
    if "CreatedBy" in summary:
        fields["created_by"] = summary.get("CreatedBy") or {}
    if tags is not None:
        fields["tags"] = dict(tags)
    return fields


def diff(current: dict[str, Any], new: dict[str, Any], fields: tuple[str, ...] | list[str]) -> dict[str, list[Any]]:
    """``{field: [before, after]}`` for fields whose values differ (JSON-comparable)."""
    changes: dict[str, list[Any]] = {}
    for name in fields:
        before, after = current.get(name), new.get(name)
        if _comparable(before) != _comparable(after):
            changes[name] = [_jsonish(before), _jsonish(after)]
    return changes


def _comparable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(microsecond=value.microsecond // 1000 * 1000)
    if value in (None, "", {}, []):
        return None
    return canonical_json(value) if isinstance(value, dict | list) else value


def _jsonish(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def summary_differs(mirror: dict[str, Any], summary: dict[str, Any]) -> bool:
    """True when a ListModelPackages summary disagrees with the mirrored row.

    ``ModelApprovalStatus`` is optional in ``ModelPackageSummary`` (botocore): a summary without it says
    the status is unknown, which differs from any status the mirror holds (the package is described for
    the truth); a description is omitted from summaries that have none, so its absence says nothing.
    """
    for api_key, field in SUMMARY_FIELDS.items():
        if api_key == "ModelApprovalStatus" and api_key not in summary:
            if mirror.get(field):
                return True
            continue
        if api_key in summary and (summary.get(api_key) or "") != (mirror.get(field) or ""):
            return True
    lifecycle = summary.get("ModelLifeCycle")
    if lifecycle is None:
        return False
    stage = (lifecycle.get("Stage") or "", lifecycle.get("StageStatus") or "")
    return stage != (mirror.get("lifecycle_stage") or "", mirror.get("lifecycle_stage_status") or "")


@dataclass(frozen=True)
class MetricsSourceRef:
    slot: str
    s3_uri: str
    content_type: str
    content_digest: str

    @property
    def is_json(self) -> bool:
        ctype = self.content_type.lower()
        return "json" in ctype or (not ctype and self.s3_uri.lower().endswith(".json"))


def metrics_sources(model_metrics: dict[str, Any] | None) -> list[MetricsSourceRef]:
    """Every MetricsSource leaf of ``ModelMetrics`` (and nothing else), with its slot path."""
    refs: list[MetricsSourceRef] = []
    for section, leaves in sorted((model_metrics or {}).items()):
        if not isinstance(leaves, dict):
            continue
        for leaf, source in sorted(leaves.items()):
            if isinstance(source, dict) and source.get("S3Uri"):
                refs.append(
                    MetricsSourceRef(
                        slot=f"{section}.{leaf}",
                        s3_uri=str(source["S3Uri"]),
                        content_type=str(source.get("ContentType") or ""),
                        content_digest=str(source.get("ContentDigest") or ""),
                    )
                )
    return refs


def referenced_card(customer_metadata: dict[str, Any] | None) -> str:
    """The standalone card a package names explicitly (ModelCardArn wins over ModelCardName).

    A name taken from an ARN may be lower-cased (SageMaker ARNs lower-case resource names): callers match
    card names without regard to case.
    """
    meta = customer_metadata or {}
    for key in ("ModelCardArn", "ModelCardName"):
        value = meta.get(key)
        if isinstance(value, str) and value.strip():
            value = value.strip()
            return value.rsplit("/", 1)[-1] if value.startswith("arn:") else value
    return ""


def card_fields(record: dict[str, Any]) -> dict[str, Any]:
    arn = record.get("ModelCardArn")
    name = record.get("ModelCardName")
    if not arn or not name:
        raise RecordError("model card record lacks ModelCardArn/ModelCardName")
    return {
        "arn": arn,
        "name": name,
        "version": int(record.get("ModelCardVersion") or 1),
        "status": str(record.get("ModelCardStatus") or ""),
        "created_at": parse_time(record.get("CreationTime")),
        "last_modified_at": parse_time(record.get("LastModifiedTime")),
    }


def package_name_of_model(model: dict[str, Any]) -> str:
    """The registry package a SageMaker Model was created from, if any."""
    containers = [model.get("PrimaryContainer") or {}] + list(model.get("Containers") or [])
    for container in containers:
        name = container.get("ModelPackageName")
        if name:
            return str(name)
    return ""


def endpoint_variants(config: dict[str, Any], models: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Variant rows for an endpoint config: model → package ARN, with weights and instances."""
    rows = []
    for variant in config.get("ProductionVariants") or []:
        model_name = str(variant.get("ModelName") or "")
        rows.append(
            {
                "variant_name": str(variant.get("VariantName") or ""),
                "model_name": model_name,
                "package_arn": package_name_of_model(models.get(model_name) or {}),
                "weight": variant.get("InitialVariantWeight"),
                "instance_type": str(variant.get("InstanceType") or ""),
                "instance_count": variant.get("InitialInstanceCount"),
            }
        )
    return rows


def parse_event(body: str) -> tuple[str, dict[str, Any]]:
    """(detail-type, detail) of an EventBridge envelope delivered through SQS.

    Tolerates SNS wrapping (``Message`` holding the envelope) and the documented sample's
    duplicated ``source`` key. Raises RecordError for anything that is not such an event.
    """
    try:
        envelope = json.loads(body)
    except ValueError as exc:
        raise RecordError(f"message body is not JSON: {body[:120]!r}") from exc
    if isinstance(envelope, dict) and "Message" in envelope and "detail-type" not in envelope:
        return parse_event(str(envelope["Message"]))
    if not isinstance(envelope, dict) or "detail-type" not in envelope:
        raise RecordError("message is not an EventBridge event (no detail-type)")
    detail = envelope.get("detail")
    if not isinstance(detail, dict):
        raise RecordError("EventBridge event has no detail object")
    return str(envelope["detail-type"]), detail


# --- sharding a full reconciliation (docs/scaling.md) ---------------------------------------
# Counts that say whether something happened during the run, not how often: a run whose shards
# all fell back from Search to List + Describe fell back once, so these merge with max.
FLAG_COUNTS = frozenset({"search_fallback"})
# Bookkeeping kept in ``SyncRun.counts`` while the shards run; dropped when the run finishes.
SHARDS_DONE = "shards_done"
SHARD_IDS_DONE = "shard_ids_done"


def plan_shards(group_ids: Iterable[int], per_shard: int) -> list[list[int]]:
    """Split the groups to reconcile into shards of at most ``per_shard`` groups (stable order)."""
    ids = sorted(set(group_ids))
    size = max(1, per_shard)
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def merge_counts(total: dict[str, Any], part: dict[str, int]) -> dict[str, Any]:
    """Add one shard's counts to the run's: sums, except the yes/no ``FLAG_COUNTS`` (max)."""
    merged = dict(total)
    for key, value in part.items():
        if not value:
            continue
        current = int(merged.get(key) or 0)
        merged[key] = max(current, int(value)) if key in FLAG_COUNTS else current + int(value)
    return merged


def merge_calls(total: dict[str, int], part: dict[str, int]) -> dict[str, int]:
    """API calls by operation, summed over the shards; sorted like ``CallStats.as_dict``."""
    merged = dict(total)
    for operation, n in part.items():
        merged[operation] = int(merged.get(operation) or 0) + int(n)
    return dict(sorted(merged.items()))


def sharded_outcome(counts: dict[str, Any], *, has_errors: bool, final_error: str = "") -> tuple[str, str]:
    """(status, error) of a finished sharded run.

    ``failed`` when the last step raised or no group could be reconciled, ``partial`` when some
    groups (or packages, reports...) failed while the rest completed, else ``succeeded``.
    """
    if final_error:
        return "failed", final_error
    groups = int(counts.get("groups") or 0)
    failed = int(counts.get("groups_failed") or 0)
    if failed:
        message = (
            f"{failed} of {groups} groups could not be reconciled (see errors); nothing in them was marked deleted"
        )
        return ("failed" if failed >= groups else "partial"), message
    return ("partial" if has_errors else "succeeded"), ""


def final_counts(counts: dict[str, Any]) -> dict[str, int]:
    """The counts a finished run shows: no shard bookkeeping, no zeros, sorted."""
    return {
        key: value
        for key, value in sorted(counts.items())
        if key not in (SHARDS_DONE, SHARD_IDS_DONE) and isinstance(value, int) and value
    }
