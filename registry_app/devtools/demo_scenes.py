"""What happens in the demo registry once the dashboard watches it (``make demo``, after the first sync).

The seed (``demo_seed``) builds the registry's past; these scenes are the present, each made the way
it happens in real life, so the pages that explain such events have something to show:

* **an outside approval**: the owner of ``churn-propensity`` approves v4 in SageMaker Studio, past the
  dashboard (``/audit/bypasses/`` lists it once the mirror has seen it);
* **a revocation**: compliance revokes ``churn-propensity`` v1 through the dashboard (not reproducible),
  and the push takes it to Rejected in the registry;
* **a push conflict**: ``demand-forecast`` v4 gets its ML-lead and fairness approvals, its owner rejects
  it in Studio meanwhile, and the compliance approval's decision push then finds the registry changed
  and stops (conflict) instead of overwriting the owner's decision.

The registry is called through boto3 (``AWS_ENDPOINT_URL``: the fake), as the named person in an
assumed role with ``SourceIdentity`` (docs/aws-fake.md); the dashboard's part goes through its own
services (``signoff_create``, ``package_revoke``, ``push_execute``), exactly as the web views call them.
The Studio calls are also delivered to the trail's bucket as CloudTrail would a few minutes later: a
log file and a signed ``_backfill`` digest chained to the newest digest (``write_trail``), so the S3
ingest names who made each outside decision and still validates every file. Run an incremental sync
(and an S3 pass) afterwards so the mirror and the audit log observe the registry's side
(``manage.py stage_demo_scenes`` does both).

Idempotent: a scene whose package has already moved on is skipped.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from django.contrib.auth import get_user_model

from registry_app.devtools.demo_findings import seed_findings
from registry_app.models import ModelPackage, PushOutbox
from registry_app.models.registry import ApprovalStatus
from registry_app.review.decisions import package_revoke
from registry_app.review.push import PushBlocked, push_execute, registry_client_for
from registry_app.review.signoffs import signoff_create

__all__ = [
    "CONFLICT",
    "OUTSIDE_APPROVAL",
    "REVOKED",
    "SceneSummary",
    "approve_outside",
    "stage_demo_scenes",
]

log = logging.getLogger(__name__)

OUTSIDE_APPROVAL = ("churn-propensity", 4)
REVOKED = ("churn-propensity", 1)
CONFLICT = ("demand-forecast", 4)
APPROVER_ROLE = "ModelApprover"
STUDIO_ROLE = "service-role/AmazonSageMaker-ExecutionRole-MLPlatform"


@dataclass(frozen=True)
class RegistryCall:
    """An UpdateModelPackage made in Studio by a person: what the trail records of it."""

    region: str
    account: str
    bucket: str  # the source's CloudTrail bucket ("" : none)
    when: dt.datetime
    person: str
    arn: str
    status: str
    description: str


@dataclass
class SceneSummary:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    calls: list[RegistryCall] = field(default_factory=list)
    trail_files: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"  scene: {line}" for line in self.done] + [f"  scene skipped: {line}" for line in self.skipped]
        if self.trail_files:
            out.append(f"  CloudTrail: {len(self.trail_files)} log file(s), a backfill digest per Region")
        return out


def _package(group: str, version: int) -> ModelPackage | None:
    return (
        ModelPackage.objects.select_related("group__source")
        .filter(group__name=group, version=version, deleted_at__isnull=True)
        .first()
    )


def _ensure_role(account: str, role: str, config: Config) -> None:
    """The IAM role people assume, trusting the account with ``sts:SetSourceIdentity`` (as AWS requires)."""
    path, _, name = role.rpartition("/")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
            }
        ],
    }
    iam = boto3.client("iam", region_name="us-east-1", config=config)
    try:
        iam.create_role(RoleName=name, Path=f"/{path}/" if path else "/", AssumeRolePolicyDocument=json.dumps(trust))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "EntityAlreadyExists":
            raise


def _config() -> Config:
    return Config(retries={"mode": "standard", "total_max_attempts": 5}, connect_timeout=5, read_timeout=30)


def _sagemaker_as(region: str, account: str, role: str, person: str) -> Any:
    """A SageMaker client whose calls the registry records as ``person`` (AssumeRole + SourceIdentity)."""
    config = _config()
    _ensure_role(account, role, config)
    sts = boto3.client("sts", region_name=region, config=config)
    credentials = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{role}",
        RoleSessionName=person if role == APPROVER_ROLE else "SageMaker",
        SourceIdentity=person,
        DurationSeconds=900,
    )["Credentials"]
    return boto3.client(
        "sagemaker",
        region_name=region,
        config=config,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def approve_outside(package: ModelPackage, status: str, person: str, description: str) -> RegistryCall:
    """Set ``package``'s status in the registry as ``person`` working in Studio (not the dashboard)."""
    account = package.arn.split(":")[4]
    source = package.group.source
    client = _sagemaker_as(source.region, account, STUDIO_ROLE, person)
    when = dt.datetime.now(dt.UTC).replace(microsecond=0)
    client.update_model_package(
        ModelPackageArn=package.arn, ModelApprovalStatus=status, ApprovalDescription=description
    )
    return RegistryCall(
        source.region, account, source.cloudtrail_bucket, when, person, package.arn, status, description
    )


def write_trail(calls: list[RegistryCall]) -> list[str]:
    """Deliver the trail's record of ``calls`` as CloudTrail would a few minutes later: a log file per
    Region and five minutes, and a signed ``_backfill`` digest listing it (chained to the newest digest),
    so the S3 ingest (beat) ties the outside decisions to the calls and validates the files."""
    from registry_app.devtools.demo_seed import _Trail, cloudtrail_files
    from registry_app.devtools.signed_digests import write_backfill_digest

    written: list[str] = []
    for bucket in sorted({c.bucket for c in calls if c.bucket}):
        mine = [c for c in calls if c.bucket == bucket]
        account = mine[0].account
        trail = _Trail(account, max(c.when for c in mine) + dt.timedelta(hours=1))
        for call in mine:
            trail.add(
                call.region,
                call.when,
                "UpdateModelPackage",
                trail.studio(call.person),
                {
                    "modelPackageArn": call.arn,
                    "modelApprovalStatus": call.status,
                    "approvalDescription": call.description,
                },
                {"modelPackageArn": call.arn},
            )
        s3 = boto3.client("s3", region_name=mine[0].region, config=_config())
        by_region: dict[str, dict[str, str]] = {}
        for key, records in sorted(cloudtrail_files(account, trail.records).items()):
            plain = json.dumps({"Records": records}).encode()
            body = gzip.compress(plain, mtime=0)
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json", ContentEncoding="gzip")
            by_region.setdefault(key.split("/")[3], {})[key] = hashlib.sha256(plain).hexdigest()
            written.append(key)
        for region, files in sorted(by_region.items()):
            write_backfill_digest(s3, bucket, account, region, files, now=trail.now)
    return written


def _deliver(package: ModelPackage) -> list[str]:
    """Send the package's undelivered pushes now, oldest first (the worker may not run yet)."""
    states = []
    pushes = list(PushOutbox.objects.filter(package=package).select_related("package__source").order_by("created_at"))
    client = registry_client_for(pushes[0]) if pushes else None  # one client for all (building one is slow)
    for push in pushes:
        try:
            states.append(push_execute(push.pk, client=client).state)
        except PushBlocked:
            states.append("blocked")
    return states


def _outside_approval(users: dict[str, Any], calls: list[RegistryCall]) -> str:
    package = _package(*OUTSIDE_APPROVAL)
    if package is None or package.approval_status != ApprovalStatus.PENDING:
        return ""
    calls.append(
        approve_outside(
            package,
            ApprovalStatus.APPROVED,
            "lena-fischer",
            "Approved in Studio for the spring retention campaign; the evaluation re-run looks fine.",
        )
    )
    return f"{package.group.name} v{package.version} approved in Studio by lena-fischer (outside the dashboard)"


def _revocation(users: dict[str, Any], calls: list[RegistryCall]) -> str:
    package = _package(*REVOKED)
    if package is None or package.approval_status != ApprovalStatus.APPROVED:
        return ""
    package_revoke(
        user=users["compliance"],
        package_id=package.pk,
        justification=(
            "Not reproducible: no RequirementsHash, and the notebook environment is gone. "
            "Superseded by v2; must not be deployed again. MLGOV-1301."
        ),
    )
    states = _deliver(package)
    return f"{package.group.name} v{package.version} revoked by compliance (push: {', '.join(states)})"


def _conflict(users: dict[str, Any], calls: list[RegistryCall]) -> str:
    package = _package(*CONFLICT)
    if package is None or package.approval_status != ApprovalStatus.PENDING or package.signoffs.exists():
        return ""
    for username, role in (("mlead", "ml-lead"), ("fairness", "fairness")):
        signoff_create(
            user=users[username], package_id=package.pk, role=role, decision="approve", comment="Looks good to me."
        )
    _deliver(package)  # the role flags reach the registry
    calls.append(
        approve_outside(
            package,
            ApprovalStatus.REJECTED,
            "james-carter",
            "Rejected in Studio: the holiday features leak the promotion calendar; retraining as v5.",
        )
    )
    signoff_create(
        user=users["compliance"],
        package_id=package.pk,
        role="compliance",
        decision="approve",
        comment="Compliance checks complete.",
    )
    states = _deliver(package)
    return (
        f"{package.group.name} v{package.version}: approved by three roles while james-carter rejected it in "
        f"Studio: push {states[-1] if states else 'missing'}"
    )


def stage_demo_scenes() -> SceneSummary:
    """Play the scenes (module docstring) against the registry and the dashboard; skip those done."""
    user_model = get_user_model()
    users = {u.username: u for u in user_model.objects.filter(username__in=("mlead", "fairness", "compliance"))}
    summary = SceneSummary()
    scenes: tuple[tuple[str, Callable[[dict[str, Any], list[RegistryCall]], str]], ...] = (
        ("outside approval", _outside_approval),
        ("revocation", _revocation),
        ("push conflict", _conflict),
    )
    for name, scene in scenes:
        line = scene(users, summary.calls)
        (summary.done if line else summary.skipped).append(line or name)
    summary.done += seed_findings(users)  # open, overdue and closed findings, an approve-with-conditions
    summary.trail_files = write_trail(summary.calls)
    return summary
