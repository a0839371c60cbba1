"""The API's response shapes (pydantic, via ninja): what ``/api/v1/openapi.json`` documents.

Field names are part of the contract with pipelines: add fields, never rename or remove them
within v1.
"""

from __future__ import annotations

import datetime as dt

from ninja import Field, Schema

__all__ = [
    "AutomatedOut",
    "CheckOut",
    "ErrorOut",
    "EvidenceOut",
    "GateOut",
    "GroupOut",
    "GroupPageOut",
    "ImageOut",
    "LatestOut",
    "MetricOut",
    "NotDeployableOut",
    "PackageOut",
    "PackagePageOut",
    "PackageSummaryOut",
    "ReasonOut",
    "SignoffOut",
    "SkippedOut",
    "VersionCountsOut",
]


class ErrorOut(Schema):
    error: str = Field(description="A stable code, e.g. invalid_token, insufficient_scope, not_found")
    detail: str


class ReasonOut(Schema):
    code: str = Field(description="Stable code; docs/deploy-gate.md lists them")
    message: str


class SignoffOut(Schema):
    user: str
    role: str
    decision: str = Field(description="approve | reject")
    signed_at: dt.datetime
    comment: str
    current: bool = Field(description="Valid for the package's present content (not stale)")


class MetricOut(Schema):
    name: str
    value: float | None
    facet: str = ""
    kind: str = ""
    stage: str = ""


class GateOut(Schema):
    gate: str
    status: str = Field(description="pass | fail | missing")
    observed: float | None
    reason: str


class AutomatedOut(Schema):
    principal: str = Field(description="IAM ARN that set Approved ('' when not known)")
    principal_source: str = Field(description="cloudtrail | outside_decision | ''")
    matched_pattern: str | None = Field(description="The policy's accept_automated_approvals pattern it matched")
    gates_must_pass: bool


class EvidenceOut(Schema):
    arn: str
    group: str
    source: str
    version: int
    approval_status: str = Field(description="As the registry has it")
    effective_status: str = Field(description="Counting a dashboard decision still on its way to the registry")
    approved_via: str = Field(description="dashboard | automated | outside | unknown")
    approved_automatically: bool
    approved_at: dt.datetime | None
    approved_by: str = Field(description="Who decided (dashboard user) or the principal that set Approved")
    decision_id: int | None
    approval_description: str
    cloudtrail_event_id: str | None = Field(description="The UpdateModelPackage call that set Approved, if ingested")
    policy: str
    reviewed_fingerprint: str | None = Field(description="What the deciding sign-offs reviewed")
    current_fingerprint: str
    changed_since_review: list[str] = Field(description="Parts whose content changed since the review")
    revoked_at: dt.datetime | None
    card_status: str
    signoffs: list[SignoffOut]
    metrics: list[MetricOut] = Field(description="Headline metrics and the metrics the policy's gates check")
    gates: list[GateOut]
    reproducibility: dict[str, str | None]
    missing_reproducibility: list[str]
    training_job: str | None
    generated_by: str | None = Field(description="MetadataProperties.GeneratedBy")
    automated: AutomatedOut | None


class CheckOut(Schema):
    deployable: bool
    reasons: list[ReasonOut] = Field(description="Empty when deployable")
    evidence: EvidenceOut


class SkippedOut(Schema):
    version: int
    arn: str
    reasons: list[ReasonOut]


class LatestOut(Schema):
    group: str
    source: str
    version: int
    arn: str
    approved_at: dt.datetime | None
    approved_automatically: bool
    evidence: EvidenceOut
    skipped: list[SkippedOut] = Field(description="Newer Approved versions refused, newest first, with why")


class NotDeployableOut(ErrorOut):
    skipped: list[SkippedOut] = Field(default_factory=list)
    truncated: bool = Field(default=False, description="Older Approved versions were not examined")


class VersionCountsOut(Schema):
    pending: int
    approved: int
    rejected: int


class GroupOut(Schema):
    name: str
    source: str
    arn: str
    owner_account: str
    description: str
    tags: dict[str, str]
    deleted: bool
    latest_version: int | None
    versions: VersionCountsOut = Field(description="Live versions per approval status")


class GroupPageOut(Schema):
    items: list[GroupOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last")


class PackageSummaryOut(Schema):
    arn: str
    group: str
    source: str
    version: int
    approval_status: str
    package_status: str
    created_at: dt.datetime | None
    created_by: str
    last_modified_at: dt.datetime | None
    card_status: str
    headline_metric: MetricOut | None
    deleted: bool


class PackagePageOut(Schema):
    items: list[PackageSummaryOut]
    next_cursor: str | None


class ImageOut(Schema):
    image: str | None
    image_digest: str | None
    model_data_url: str | None


class PackageOut(PackageSummaryOut):
    description: str
    approval_description: str
    images: list[ImageOut]
    metrics: list[MetricOut]
    reproducibility: dict[str, str | None]
    missing_reproducibility: list[str]
    training_job: str | None
    generated_by: str | None
    customer_metadata: dict[str, str]
