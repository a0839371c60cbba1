"""What the deploy gate answers with: reasons and evidence as plain dataclasses (pure).

``Reason.code`` values are stable and documented in docs/deploy-gate.md; pipelines may branch on
them. Everything here is built from values already loaded; nothing queries.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from registry_app.mirror.cards import card_content
from registry_app.models import Metric, ModelPackage
from registry_app.models.registry import REPRODUCIBILITY_KEYS
from registry_app.review.policy import GateResult

__all__ = [
    "AutomatedEvidence",
    "Evidence",
    "GateEvidence",
    "MetricEvidence",
    "Reason",
    "SignoffEvidence",
    "gate_evidence",
    "reproducibility",
    "training_job",
]

# Reason codes (docs/deploy-gate.md lists them with what to do about each).
NOT_APPROVED = "not_approved_in_registry"
DELETED = "deleted"
REVOKED = "revoked"
DECISION_PENDING = "decision_pending"
APPROVED_OUTSIDE = "approved_outside"
NOT_APPROVED_BY_DASHBOARD = "not_approved_by_dashboard"
APPROVAL_NOT_DELIVERED = "approval_not_delivered"
CONTENT_CHANGED = "content_changed"
POLICY_NOT_SATISFIED = "policy_not_satisfied"
REJECTED_BY_REVIEWER = "rejected_by_reviewer"
AUTOMATED_PRINCIPAL_UNKNOWN = "automated_principal_unknown"
AUTOMATED_PRINCIPAL_NOT_ACCEPTED = "automated_principal_not_accepted"
AUTOMATED_GATES_FAILED = "automated_gates_failed"
CARD_NOT_APPROVED = "card_not_approved"

# How a version came to be Approved.
VIA_DASHBOARD = "dashboard"  # the dashboard's own decision, pushed and delivered
VIA_AUTOMATED = "automated"  # outside the dashboard by a principal the policy accepts
VIA_OUTSIDE = "outside"  # outside the dashboard, not accepted
VIA_UNKNOWN = "unknown"  # Approved in the registry, with no decision of the dashboard's nor a flagged change


@dataclass(frozen=True)
class Reason:
    code: str
    message: str


@dataclass(frozen=True)
class SignoffEvidence:
    user: str
    role: str
    decision: str
    signed_at: dt.datetime
    comment: str
    current: bool  # for the package's present fingerprint, and not marked stale


@dataclass(frozen=True)
class MetricEvidence:
    name: str
    value: float | None
    facet: str
    kind: str
    stage: str


@dataclass(frozen=True)
class GateEvidence:
    gate: str
    status: str  # pass | fail | missing
    observed: float | None
    reason: str


@dataclass(frozen=True)
class AutomatedEvidence:
    principal: str
    principal_source: str  # cloudtrail | outside_decision
    matched_pattern: str | None
    gates_must_pass: bool


@dataclass
class Evidence:
    arn: str
    group: str
    source: str
    version: int
    approval_status: str  # as the registry (the mirror) has it
    effective_status: str  # with the dashboard's own decision still on its way
    policy: str
    current_fingerprint: str
    card_status: str
    approved_via: str = VIA_UNKNOWN
    approved_automatically: bool = False
    approved_at: dt.datetime | None = None
    approved_by: str = ""
    decision_id: int | None = None
    approval_description: str = ""
    cloudtrail_event_id: str | None = None
    reviewed_fingerprint: str | None = None
    changed_since_review: list[str] = field(default_factory=list)
    revoked_at: dt.datetime | None = None
    signoffs: list[SignoffEvidence] = field(default_factory=list)
    metrics: list[MetricEvidence] = field(default_factory=list)
    gates: list[GateEvidence] = field(default_factory=list)
    reproducibility: dict[str, str | None] = field(default_factory=dict)
    missing_reproducibility: list[str] = field(default_factory=list)
    training_job: str | None = None
    generated_by: str | None = None
    automated: AutomatedEvidence | None = None


# --------------------------------------------------------------------------------------------- pieces


def gate_evidence(gates: list[GateResult]) -> list[GateEvidence]:
    return [GateEvidence(str(g.gate), g.status, g.observed, g.reason) for g in gates]


def metric_evidence(metrics: list[Metric], names: set[str]) -> list[MetricEvidence]:
    """The metrics named in ``names`` (lower-case): the headline ones and those the gates check."""
    return [
        MetricEvidence(m.name, m.value, m.facet, m.kind, m.stage)
        for m in sorted(metrics, key=lambda m: (m.name.casefold(), m.facet, m.stage, m.pk))
        if m.name.casefold() in names
    ]


def reproducibility(package: ModelPackage) -> tuple[dict[str, str | None], list[str]]:
    meta = package.customer_metadata if isinstance(package.customer_metadata, dict) else {}
    values = {key: (str(meta[key]) if meta.get(key) else None) for key in REPRODUCIBILITY_KEYS}
    return values, [key for key, value in values.items() if not value]


def training_job(package: ModelPackage) -> tuple[str | None, str | None]:
    """``(training job ARN, MetadataProperties.GeneratedBy)``: the job from the model card's
    ``training_details.training_job_details.training_arn``, else ``GeneratedBy`` when it names a
    training job (it often names a pipeline execution instead)."""
    props = package.metadata_properties if isinstance(package.metadata_properties, dict) else {}
    generated_by = str(props["GeneratedBy"]) if props.get("GeneratedBy") else None
    details = card_content(package).get("training_details")
    job = details.get("training_job_details") if isinstance(details, dict) else None
    arn = job.get("training_arn") if isinstance(job, dict) else None
    if isinstance(arn, str) and arn:
        return arn, generated_by
    if generated_by and ":training-job/" in generated_by:
        return generated_by, generated_by
    return None, generated_by
