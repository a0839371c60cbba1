"""Packages in every deploy-gate state, built through the real services where one exists.

``approve_via_dashboard`` runs the three sign-offs through ``signoff_create`` (which writes the
Decision and its pushes), then stands in for the push task and the mirror refresh: the pushes are
marked sent and the mirror row shows Approved, with the CloudTrail call the push made.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

from django.utils import timezone

from registry_app.audit.outside_decisions import record_outside_decision
from registry_app.models import ApprovalPolicy, CloudTrailEvent, ModelPackage, OutsideDecision, PushOutbox
from registry_app.models.registry import ApprovalStatus
from registry_app.review.decisions import package_revoke
from registry_app.review.signoffs import signoff_create
from tests.audit.builders import cloudtrail
from tests.factories import ACCOUNT_ID, EvaluationReportFactory, MetricFactory, ModelPackageFactory

APPROVED = ApprovalStatus.APPROVED
PIPELINE_ROLE = "SageMakerPipelineApprover"
PIPELINE_ARN = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{PIPELINE_ROLE}/pipeline-run-42"
SIGNERS = (("mlead", "ml-lead"), ("fair", "fairness"), ("comp", "compliance"))

_QUIET = (
    "registry_app.notifications.emails.enqueue_decided",
    "registry_app.notifications.emails.enqueue_review_requested",
)


def _quiet() -> Any:
    """The e-mail side effects are another module's; they must not run here."""
    stack = [mock.patch(target, create=True) for target in _QUIET]
    return _Stack(stack)


class _Stack:
    def __init__(self, patches: list[Any]) -> None:
        self.patches = patches

    def __enter__(self) -> None:
        for p in self.patches:
            p.start()

    def __exit__(self, *exc: Any) -> None:
        for p in self.patches:
            p.stop()


def package_with_metrics(group: Any = None, *, auc: float = 0.91, **kwargs: Any) -> ModelPackage:
    """A pending package with one report and an ``auc`` metric."""
    package = ModelPackageFactory(group=group, **kwargs) if group is not None else ModelPackageFactory(**kwargs)
    report = EvaluationReportFactory(package=package, slot="ModelQuality.Statistics")
    MetricFactory(report=report, package=package, name="auc", value=auc)
    return ModelPackage.objects.select_related("group", "source", "model_card").get(pk=package.pk)


def approval_call(package: ModelPackage, when: dt.datetime, *, actor: str, role: str = "GovernanceDashboard") -> Any:
    """The CloudTrail UpdateModelPackage that set Approved (as a session of ``role``)."""
    event = cloudtrail(
        "UpdateModelPackage", when, actor=actor, package=package, request={"modelApprovalStatus": APPROVED}
    )
    arn = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role}/{actor}"
    CloudTrailEvent.objects.filter(pk=event.pk).update(actor_arn=arn)
    event.actor_arn = arn
    return event


def approve_via_dashboard(package: ModelPackage, personas: dict[str, Any], *, with_event: bool = True) -> Any:
    """Three sign-offs, the Decision and its push delivered, the mirror Approved. Returns the decision."""
    with _quiet():
        result = None
        for persona, role in SIGNERS:
            result = signoff_create(
                user=personas[persona], package_id=package.pk, role=role, decision="approve", comment=f"ok by {role}"
            )
    assert result is not None and result.decision is not None, result.result.reasons if result else None
    sent = timezone.now()
    PushOutbox.objects.filter(package=package).update(state=PushOutbox.State.SENT, sent_at=sent)
    ModelPackage.objects.filter(pk=package.pk).update(approval_status=APPROVED)
    package.approval_status = APPROVED
    if with_event:
        approval_call(package, sent - dt.timedelta(seconds=2), actor="comp")
    return result.decision


def approve_outside(
    package: ModelPackage, *, actor: str = "pipeline-run-42", role: str = PIPELINE_ROLE, with_event: bool = True
) -> OutsideDecision:
    """Someone set Approved in the registry directly; the sync saw it and flagged it."""
    before = str(package.approval_status)
    now = timezone.now()
    if with_event:
        approval_call(package, now - dt.timedelta(minutes=1), actor=actor, role=role)
    ModelPackage.objects.filter(pk=package.pk).update(approval_status=APPROVED)
    package.approval_status = APPROVED
    with _quiet():
        return record_outside_decision(package, from_status=before, to_status=APPROVED, observed_at=now)


def change_content(package: ModelPackage, description: str = "retrained: new content") -> None:
    """The registry's copy changed after the review (as the sync would write it)."""
    ModelPackage.objects.filter(pk=package.pk).update(description=description)
    package.description = description


def revoke(package: ModelPackage, personas: dict[str, Any], *, delivered: bool = False) -> Any:
    with _quiet():
        decision = package_revoke(user=personas["comp"], package_id=package.pk, justification="Bias found in prod")
    if delivered:
        PushOutbox.objects.filter(decision=decision).update(state=PushOutbox.State.SENT, sent_at=timezone.now())
        ModelPackage.objects.filter(pk=package.pk).update(approval_status=ApprovalStatus.REJECTED)
        package.approval_status = ApprovalStatus.REJECTED
    return decision


def automated_policy(*, principals: list[str] | None = None, gates: list[str] | None = None, **extra: Any) -> None:
    """The default policy, accepting a pipeline role's approvals when ``auc >= 0.85`` passes."""
    spec = {
        "name": "low-risk",
        "required_roles": {"ml-lead": 1, "fairness": 1, "compliance": 1},
        "gates": ["auc >= 0.85"] if gates is None else gates,
        "accept_automated_approvals": {
            "principals": principals or [f"arn:aws:iam::{ACCOUNT_ID}:role/SageMakerPipeline*"],
            "gates_must_pass": True,
            **extra,
        },
    }
    ApprovalPolicy.objects.update_or_create(name="low-risk", defaults={"is_default": True, "spec": spec})


def fresh(package: ModelPackage) -> ModelPackage:
    return ModelPackage.objects.select_related("group", "source", "model_card").get(pk=package.pk)
