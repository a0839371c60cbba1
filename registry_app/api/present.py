"""Rows and gate answers turned into the response schemas (``api.schemas``). No query beyond what
the rows were loaded with."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from registry_app.api import schemas as s
from registry_app.gate import evidence as ev
from registry_app.gate.answers import Skipped
from registry_app.gate.deployability import Assessment
from registry_app.gate.registry import headline_of
from registry_app.models import Metric, ModelPackage, ModelPackageGroup
from registry_app.permissions import principal_names
from registry_app.review.state import card_status_of

__all__ = ["check_out", "group_out", "package_out", "package_summary_out", "skipped_out"]


def _number(value: float | None) -> float | None:
    """JSON has no NaN or infinity: an unusable value is null."""
    return value if value is not None and math.isfinite(value) else None


def _metric(m: Metric | ev.MetricEvidence) -> s.MetricOut:
    return s.MetricOut(
        name=m.name, value=_number(m.value), facet=m.facet or "", kind=m.kind or "", stage=getattr(m, "stage", "") or ""
    )


def evidence_out(evidence: ev.Evidence) -> s.EvidenceOut:
    data = asdict(evidence)
    data["signoffs"] = [s.SignoffOut(**item) for item in data["signoffs"]]
    data["metrics"] = [_metric(m) for m in evidence.metrics]
    data["gates"] = [s.GateOut(**{**item, "observed": _number(item["observed"])}) for item in data["gates"]]
    data["automated"] = s.AutomatedOut(**data["automated"]) if evidence.automated is not None else None
    return s.EvidenceOut(**data)


def _reasons(reasons: list[ev.Reason]) -> list[s.ReasonOut]:
    return [s.ReasonOut(code=r.code, message=r.message) for r in reasons]


def check_out(assessment: Assessment) -> s.CheckOut:
    return s.CheckOut(
        deployable=assessment.deployable,
        reasons=_reasons(assessment.reasons),
        evidence=evidence_out(assessment.evidence),
    )


def skipped_out(skipped: list[Skipped]) -> list[s.SkippedOut]:
    return [s.SkippedOut(version=k.version, arn=k.arn, reasons=_reasons(k.reasons)) for k in skipped]


def latest_out(found: Assessment, skipped: list[Skipped]) -> s.LatestOut:
    evidence = found.evidence
    return s.LatestOut(
        group=evidence.group,
        source=evidence.source,
        version=evidence.version,
        arn=evidence.arn,
        approved_at=evidence.approved_at,
        approved_automatically=evidence.approved_automatically,
        evidence=evidence_out(evidence),
        skipped=skipped_out(skipped),
    )


def _tags(tags: Any) -> dict[str, str]:
    if not isinstance(tags, dict):
        return {}
    return {str(k): "" if v is None else str(v) for k, v in tags.items()}


def group_out(group: ModelPackageGroup) -> s.GroupOut:
    return s.GroupOut(
        name=group.name,
        source=group.source.name,
        arn=group.arn,
        owner_account=group.owner_account,
        description=group.description,
        tags=_tags(group.tags),
        deleted=group.deleted_at is not None,
        latest_version=getattr(group, "latest_version", None),
        versions=s.VersionCountsOut(
            pending=getattr(group, "pending_count", 0),
            approved=getattr(group, "approved_count", 0),
            rejected=getattr(group, "rejected_count", 0),
        ),
    )


def _principal(context: Any) -> str:
    names = principal_names(context)
    return names[0] if names else ""


def package_summary_out(package: ModelPackage) -> dict[str, Any]:
    headline = headline_of(package)
    return {
        "arn": package.arn,
        "group": package.group.name,
        "source": package.group.source.name,
        "version": package.version,
        "approval_status": str(package.approval_status),
        "package_status": package.package_status,
        "created_at": package.created_at,
        "created_by": _principal(package.created_by),
        "last_modified_at": package.last_modified_at,
        "card_status": card_status_of(package),
        "headline_metric": _metric(headline) if headline is not None else None,
        "deleted": package.deleted_at is not None or package.group.deleted_at is not None,
    }


def _images(package: ModelPackage) -> list[s.ImageOut]:
    spec = package.inference_specification if isinstance(package.inference_specification, dict) else {}
    containers = spec.get("Containers")
    out: list[s.ImageOut] = []
    for c in containers if isinstance(containers, list) else []:
        if not isinstance(c, dict):
            continue
        source = c.get("ModelDataSource")
        s3 = source.get("S3DataSource") if isinstance(source, dict) else None
        url = c.get("ModelDataUrl") or (s3.get("S3Uri") if isinstance(s3, dict) else None)
        out.append(
            s.ImageOut(image=_text(c.get("Image")), image_digest=_text(c.get("ImageDigest")), model_data_url=_text(url))
        )
    return out


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def package_out(package: ModelPackage, metrics: list[Metric]) -> s.PackageOut:
    repro, missing = ev.reproducibility(package)
    job, generated_by = ev.training_job(package)
    meta = package.customer_metadata if isinstance(package.customer_metadata, dict) else {}
    return s.PackageOut(
        **package_summary_out(package),
        description=package.description,
        approval_description=package.approval_description,
        images=_images(package),
        metrics=[_metric(m) for m in metrics],
        reproducibility=repro,
        missing_reproducibility=missing,
        training_job=job,
        generated_by=generated_by,
        customer_metadata={str(k): "" if v is None else str(v) for k, v in meta.items()},
    )
