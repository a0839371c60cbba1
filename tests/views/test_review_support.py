"""Shared builders for the queue, review and security-matrix tests (this module holds no tests).

Personas are Django users in auth groups named like the roles; packages come in the four states
the matrix covers. Nothing here talks to AWS: the services only enqueue ``push_task`` on commit,
which a non-transactional test never reaches (``django_capture_on_commit_callbacks`` shows them).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from registry_app.models import Decision, ModelPackage, ModelPackageGroup, PushOutbox, RegistrySource, SignOff
from registry_app.models.registry import ApprovalStatus
from registry_app.review.queue_state import review_state_refresh
from tests.factories import (
    EvaluationReportFactory,
    MetricFactory,
    ModelPackageFactory,
    ModelPackageGroupFactory,
    RegistrySourceFactory,
)
from tests.personas import make_user

XSS = "<script>alert(1)</script>"

# persona -> roles (auth groups) and staff flag; "anonymous" is a client without login.
PERSONAS: dict[str, tuple[tuple[str, ...], bool]] = {
    "nobody": ((), False),
    "viewer": (("viewer",), False),
    "mlead": (("ml-lead",), False),
    "fair": (("fairness",), False),
    "comp": (("compliance",), False),
    "staff": ((), True),
}
ROLE_OF = {"mlead": "ml-lead", "fair": "fairness", "comp": "compliance"}
STATES = ("pending", "approved", "rejected", "deleted")
STATUS_OF = {
    "pending": ApprovalStatus.PENDING,
    "approved": ApprovalStatus.APPROVED,
    "rejected": ApprovalStatus.REJECTED,
    "deleted": ApprovalStatus.PENDING,
}


def persona_user(name: str) -> Any:
    roles, staff = PERSONAS[name]
    return make_user(name, *roles, is_staff=staff)


def client_for(user: Any | None, **kwargs: Any) -> Client:
    client = Client(**kwargs)
    if user is not None:
        client.force_login(user)
    return client


def source() -> RegistrySource:
    return RegistrySourceFactory(name="prod-eu", region="eu-west-1", account_id="111122223333")


def package_in_state(state: str, *, group_name: str = "credit-risk", version: int = 1, **fields: Any) -> ModelPackage:
    """A package (with an evaluation report and an AUC metric) in one of ``STATES``.

    ``deleted``: a pending version whose group and package both vanished from the registry.
    """
    group = ModelPackageGroup.objects.filter(name=group_name).first() or ModelPackageGroupFactory(
        source=source(), name=group_name, tags={"RiskTier": "High"}
    )
    package = ModelPackageFactory(group=group, version=version, approval_status=STATUS_OF[state], **fields)
    report = EvaluationReportFactory(package=package, slot="ModelQuality.Statistics")
    MetricFactory(report=report, name="auc", value=0.9)
    if state == "deleted":
        now = timezone.now()
        ModelPackage.objects.filter(pk=package.pk).update(deleted_at=now)
        ModelPackageGroup.objects.filter(pk=group.pk).update(deleted_at=now)
        package.refresh_from_db()
    review_state_refresh([package.pk])  # as the sync's hooks would have
    return package


def failed_push(package: ModelPackage, *, state: str = PushOutbox.State.FAILED, **fields: Any) -> PushOutbox:
    values: dict[str, Any] = {
        "package": package,
        "kind": PushOutbox.Kind.FLAGS,
        "flags": {"MLEngineerApproved": "true"},
        "expected_status": ApprovalStatus.PENDING,
        "state": state,
        "attempts": 3,
        "last_error": "AccessDeniedException: not authorized to perform sagemaker:UpdateModelPackage",
        **fields,
    }
    push = PushOutbox.objects.create(**values)
    review_state_refresh([package.pk])  # as the services writing pushes do
    return push


def signoff_row(package: ModelPackage, user: Any, role: str, *, decision: str = "approve", **fields: Any) -> SignOff:
    """A stored sign-off on the package's current fingerprint (as the service would have written it)."""
    from registry_app.review.state import package_fingerprint

    fingerprint, _ = package_fingerprint(ModelPackage.objects.get(pk=package.pk))
    values: dict[str, Any] = {"fingerprint": fingerprint, "comment": "", **fields}
    signoff = SignOff.objects.create(package=package, user=user, role=role, decision=decision, **values)
    review_state_refresh([package.pk])  # as signoff_create does
    return signoff


def ago(**kwargs: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(**kwargs)


def url(name: str, package: ModelPackage) -> str:
    return reverse(f"registry:{name}", args=[package.group.name, package.version])


def counts() -> tuple[int, int, int]:
    return SignOff.objects.count(), Decision.objects.count(), PushOutbox.objects.count()


def push_states() -> dict[str, str]:
    return {str(pk): state for pk, state in PushOutbox.objects.values_list("pk", "state")}
