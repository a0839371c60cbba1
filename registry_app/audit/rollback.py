"""The rollback plan on an endpoint page: the version serving now, the previously approved version that
served the endpoint before it (else the highest earlier version approved now), that version's current
evidence (the deploy gate's answer), and the exact AWS CLI steps that would put it back.

The steps are shown, never executed: approving and deploying stay separate concerns, and the
dashboard holds no permission to change an endpoint. Reads only.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
from dataclasses import dataclass, field

from django.utils import timezone

from registry_app.audit.endpoints import EndpointOverview
from registry_app.gate.answers import assess_package
from registry_app.gate.deployability import Assessment
from registry_app.models import EndpointDeployment, EndpointVariant, ModelPackage
from registry_app.models.registry import ApprovalStatus

__all__ = ["RollbackPlan", "Step", "resource_name", "rollback_plan"]

_NAME_BAD = re.compile(r"[^a-zA-Z0-9-]+")


@dataclass(frozen=True)
class Step:
    title: str
    command: str


@dataclass
class RollbackPlan:
    serving: ModelPackage | None
    variant: EndpointVariant | None
    candidate: ModelPackage | None = None
    served_before: EndpointDeployment | None = None  # the window in which the candidate last served
    assessment: Assessment | None = None
    steps: list[Step] = field(default_factory=list)
    note: str = ""


def rollback_plan(overview: EndpointOverview, *, now: dt.datetime | None = None) -> RollbackPlan | None:
    """None when no registry package is known to serve the endpoint."""
    serving = overview.rollback_for
    if serving is None:
        return None
    variant = next((v for v in overview.variants if v.package_id == serving.pk), None)
    plan = RollbackPlan(serving=serving, variant=variant)
    window = _served_before(overview, serving, variant)
    if window is not None:
        plan.candidate, plan.served_before = window.package, window
        plan.note = f"Served this endpoint until {window.ended_at:%Y-%m-%d %H:%M} UTC and is Approved now."
    elif overview.rollback is not None and overview.rollback.package is not None:
        plan.candidate = overview.rollback.package
        plan.note = "No earlier Approved version served this endpoint; this is the newest earlier Approved version."
    else:
        plan.note = overview.rollback.note if overview.rollback is not None else "No earlier version to go back to."
        return plan
    candidate = (
        ModelPackage.objects.select_related("group", "source", "model_card").filter(pk=plan.candidate.pk).first()
    )
    if candidate is None:  # pragma: no cover - deleted between the two reads
        return plan
    plan.candidate = candidate
    plan.assessment = assess_package(candidate)
    if overview.endpoint is not None and variant is not None:
        plan.steps = steps(overview, variant, candidate, now or timezone.now())
    return plan


def _served_before(
    overview: EndpointOverview, serving: ModelPackage, variant: EndpointVariant | None
) -> EndpointDeployment | None:
    """The newest closed window (same variant first) of another version, Approved and live now."""
    closed = [
        d
        for d in overview.history
        if d.ended_at is not None
        and d.package is not None
        and d.package_id != serving.pk
        and d.package.approval_status == ApprovalStatus.APPROVED
        and d.package.deleted_at is None
    ]
    same = [d for d in closed if variant is not None and d.variant_name == variant.variant_name]
    return (same or closed or [None])[0]


def resource_name(*parts: str, limit: int = 63) -> str:
    """A SageMaker model / endpoint-config name (``[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``) from ``parts``."""
    text = _NAME_BAD.sub("-", "-".join(p for p in parts if p)).strip("-")
    text = re.sub("-{2,}", "-", text)
    return text[:limit].strip("-") or "rollback"


def steps(
    overview: EndpointOverview, variant: EndpointVariant, candidate: ModelPackage, now: dt.datetime
) -> list[Step]:
    endpoint = overview.endpoint
    assert endpoint is not None
    region = f" --region {shlex.quote(endpoint.source.region)}"
    stamp = now.astimezone(dt.UTC).strftime("%Y%m%d%H%M")
    model = resource_name(f"{candidate.group.name}-v{candidate.version}", "rollback", stamp)
    config = resource_name(endpoint.name, "rollback", stamp)
    variants = []
    for current in overview.variants:
        item: dict[str, object] = {
            "VariantName": current.variant_name,
            "ModelName": model if current.pk == variant.pk else current.model_name,
            "InitialVariantWeight": current.weight if current.weight is not None else 1.0,
        }
        if current.instance_type:
            item["InstanceType"] = current.instance_type
            item["InitialInstanceCount"] = current.instance_count or 1
        variants.append(item)
    serverless = [v.variant_name for v in overview.variants if not v.instance_type]
    role_from = shlex.quote(variant.model_name) if variant.model_name else "CURRENT_MODEL_NAME"
    out = [
        Step(
            "Read the execution role of the model serving now (the rollback model runs with the same role)",
            f"ROLE=$(aws sagemaker describe-model --model-name {role_from} "
            f"--query ExecutionRoleArn --output text{region})",
        ),
        Step(
            f"CreateModel: a model from {candidate.group.name} v{candidate.version}",
            f'aws sagemaker create-model --model-name {shlex.quote(model)} --execution-role-arn "$ROLE" '
            f"--primary-container {shlex.quote(json.dumps({'ModelPackageName': candidate.arn}))}{region}",
        ),
        Step(
            "CreateEndpointConfig: today's variants, with the rollback model in "
            f"{variant.variant_name}"
            + (
                f" (copy the ServerlessConfig of {', '.join(serverless)} from the current config)" if serverless else ""
            ),
            f"aws sagemaker create-endpoint-config --endpoint-config-name {shlex.quote(config)} "
            f"--production-variants {shlex.quote(json.dumps(variants))}{region}",
        ),
        Step(
            f"UpdateEndpoint: switch {endpoint.name} to the new config (SageMaker keeps serving during the update)",
            f"aws sagemaker update-endpoint --endpoint-name {shlex.quote(endpoint.name)} "
            f"--endpoint-config-name {shlex.quote(config)}{region}",
        ),
        Step(
            "Wait until the endpoint is InService again",
            f"aws sagemaker wait endpoint-in-service --endpoint-name {shlex.quote(endpoint.name)}{region}",
        ),
    ]
    return out
