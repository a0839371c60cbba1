"""The deploy gate's two questions, answered from the mirror and the review state. Reads only.

* ``latest_deployable``: the newest version of a group that is Approved in the registry and
  deployable, with the newer Approved versions it skipped and why;
* ``check_package``: whether one package (found by its ARN) is deployable.

Queries are constant in the number of versions: the group, the policy rows, then per batch of
``BATCH`` candidates one query for the packages and seven for their inputs (``gate.inputs``).
A group whose newest Approved versions are all refused costs one such batch per ``BATCH`` of
them, at most ``MAX_EXAMINED`` in all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet

from registry_app.gate import evidence as ev
from registry_app.gate.deployability import Assessment, assess
from registry_app.gate.inputs import load_inputs
from registry_app.mirror.lookups import find_group
from registry_app.models import ApprovalPolicy, ModelPackage, ModelPackageGroup
from registry_app.models.registry import ApprovalStatus
from registry_app.permissions import is_active_user
from registry_app.review.policies import resolve_policy

__all__ = [
    "BATCH",
    "MAX_EXAMINED",
    "LatestAnswer",
    "Skipped",
    "assess_package",
    "check_package",
    "find_package_by_arn",
    "latest_deployable",
]

BATCH = 10
MAX_EXAMINED = 100


@dataclass(frozen=True)
class Skipped:
    version: int
    arn: str
    reasons: list[ev.Reason]


@dataclass
class LatestAnswer:
    group: ModelPackageGroup
    found: Assessment | None
    skipped: list[Skipped] = field(default_factory=list)
    truncated: bool = False  # MAX_EXAMINED Approved versions were refused; older ones were not examined


def _packages() -> QuerySet[ModelPackage]:
    return ModelPackage.objects.select_related("group", "source", "model_card")


def latest_deployable(user: Any, *, group_name: str, source_name: str | None = None) -> LatestAnswer | None:
    """The newest deployable version of ``group_name`` (None: no such group for ``user``)."""
    group = find_group(user, name=group_name, source_name=source_name)
    if group is None:
        return None
    policy = resolve_policy(ApprovalPolicy.objects.all(), group)
    answer = LatestAnswer(group=group, found=None)
    candidates = _packages().filter(group=group, approval_status=ApprovalStatus.APPROVED, deleted_at__isnull=True)
    below: int | None = None
    examined = 0
    while examined < MAX_EXAMINED:
        page = candidates if below is None else candidates.filter(version__lt=below)
        batch = list(page.order_by("-version")[:BATCH])
        if not batch:
            return answer
        inputs = load_inputs(batch)
        for package in batch:
            examined += 1
            result = assess(inputs[package.pk], policy)
            if result.deployable:
                answer.found = result
                return answer
            answer.skipped.append(Skipped(package.version, package.arn, result.reasons))
        below = batch[-1].version
    answer.truncated = candidates.filter(version__lt=below).exists() if below is not None else False
    return answer


def find_package_by_arn(user: Any, arn: str) -> ModelPackage | None:
    """The mirrored package with this ARN (exactly, else lower-cased: SageMaker ARNs name
    resources in lower case). One or two queries."""
    if not is_active_user(user):
        return None
    for candidate in dict.fromkeys((arn, arn.lower())):
        package = _packages().filter(arn=candidate).first()
        if package is not None:
            return package
    return None


def check_package(user: Any, arn: str) -> Assessment | None:
    """Whether the package ``arn`` names may be deployed (None: no such package for ``user``)."""
    package = find_package_by_arn(user, arn)
    return assess_package(package) if package is not None else None


def assess_package(package: ModelPackage) -> Assessment:
    """Deployability of a package already found (with group, source and card selected)."""
    policy = resolve_policy(ApprovalPolicy.objects.all(), package.group)
    return assess(load_inputs([package])[package.pk], policy)
