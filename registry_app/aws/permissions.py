"""Least privilege: which IAM action each AWS operation of the adapter needs, and a live check.

``OPERATIONS`` maps every operation ``registry_app/aws`` calls to the IAM actions it needs and
``RESOURCES`` says on what; ``docs/iam/*.json`` are written from them, and tests/aws keep the three
in step (an operation the code calls without an action in a policy file fails the suite).

``check_source`` exercises each *read* permission the dashboard needs with the cheapest call that
proves it (one item per page) and says, per action, allowed / denied / not checkable, with the
statement to add when denied. Writes (UpdateModelPackage) and queue reads that would consume
events are never attempted: they are reported as not checkable.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from registry_app.aws.errors import AccessDeniedError, AwsError, NotFoundError, RoleAssumptionError
from registry_app.aws.sagemaker import RegistryClient, parse_s3_uri
from registry_app.aws.session import SourceConfig

# (service, API operation) -> IAM actions. GetCallerIdentity needs no permission (STS allows it to
# every principal); AssumeRole needs the caller's policy *and* the role's trust policy.
OPERATIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("sagemaker", "ListModelPackageGroups"): ("sagemaker:ListModelPackageGroups",),
    ("sagemaker", "DescribeModelPackageGroup"): ("sagemaker:DescribeModelPackageGroup",),
    ("sagemaker", "ListTags"): ("sagemaker:ListTags",),
    ("sagemaker", "ListModelPackages"): ("sagemaker:ListModelPackages",),
    ("sagemaker", "Search"): ("sagemaker:Search",),
    ("sagemaker", "DescribeModelPackage"): ("sagemaker:DescribeModelPackage",),
    ("sagemaker", "UpdateModelPackage"): ("sagemaker:UpdateModelPackage",),
    ("sagemaker", "ListModelCards"): ("sagemaker:ListModelCards",),
    ("sagemaker", "DescribeModelCard"): ("sagemaker:DescribeModelCard",),
    ("sagemaker", "ListEndpoints"): ("sagemaker:ListEndpoints",),
    ("sagemaker", "DescribeEndpoint"): ("sagemaker:DescribeEndpoint",),
    ("sagemaker", "DescribeEndpointConfig"): ("sagemaker:DescribeEndpointConfig",),
    ("sagemaker", "DescribeModel"): ("sagemaker:DescribeModel",),
    ("sagemaker", "DescribeTrainingJob"): ("sagemaker:DescribeTrainingJob",),
    ("sagemaker", "DescribeProcessingJob"): ("sagemaker:DescribeProcessingJob",),
    ("sagemaker", "ListArtifacts"): ("sagemaker:ListArtifacts",),
    ("sagemaker", "DescribeArtifact"): ("sagemaker:DescribeArtifact",),
    ("sagemaker", "ListAssociations"): ("sagemaker:ListAssociations",),
    ("sagemaker", "QueryLineage"): ("sagemaker:QueryLineage",),
    ("s3", "GetObject"): ("s3:GetObject",),
    ("s3", "ListObjectsV2"): ("s3:ListBucket",),
    ("sqs", "ReceiveMessage"): ("sqs:ReceiveMessage",),
    ("sqs", "DeleteMessage"): ("sqs:DeleteMessage",),
    ("sqs", "GetQueueAttributes"): ("sqs:GetQueueAttributes",),
    ("cloudtrail", "LookupEvents"): ("cloudtrail:LookupEvents",),
    ("cloudtrail", "ListPublicKeys"): ("cloudtrail:ListPublicKeys",),
    # The audit anchor (aws/anchor_store.py), with the dashboard's own identity: audit-anchor-policy.json.
    ("s3", "PutObject"): ("s3:PutObject",),
    ("s3", "GetObjectLockConfiguration"): ("s3:GetBucketObjectLockConfiguration",),
    ("sts", "GetCallerIdentity"): (),
    ("sts", "AssumeRole"): ("sts:AssumeRole", "sts:SetSourceIdentity"),
}

_SAGEMAKER_TYPES = ("model-package-group", "model-package", "model-card", "endpoint", "endpoint-config", "model")
_DESCRIBED = [f"arn:aws:sagemaker:*:*:{kind}/*" for kind in _SAGEMAKER_TYPES]
# The audit anchor's bucket: granted to the dashboard's own identity, never to a source's role.
_ANCHOR_BUCKET = "arn:aws:s3:::ANCHOR_BUCKET"
_ANCHOR_OBJECTS = "arn:aws:s3:::ANCHOR_BUCKET/ANCHOR_PREFIX*"
_ANCHOR_ONLY = ("s3:PutObject", "s3:GetBucketObjectLockConfiguration")
# Action -> resources, exactly as in docs/iam (placeholders in capitals). List and Search have no
# resource-level permissions in SageMaker's authorization reference, hence "*". Describe and ListTags
# name any account: RAM-shared groups live in their owner's account, and a share is still required.
RESOURCES: dict[str, list[str]] = {
    "sagemaker:ListModelPackageGroups": ["*"],
    "sagemaker:ListModelPackages": ["*"],
    "sagemaker:Search": ["*"],
    "sagemaker:ListModelCards": ["*"],
    "sagemaker:ListEndpoints": ["*"],
    "sagemaker:DescribeModelPackageGroup": _DESCRIBED,
    "sagemaker:DescribeModelPackage": _DESCRIBED,
    "sagemaker:ListTags": _DESCRIBED,
    "sagemaker:DescribeModelCard": _DESCRIBED,
    "sagemaker:DescribeEndpoint": _DESCRIBED,
    "sagemaker:DescribeEndpointConfig": _DESCRIBED,
    "sagemaker:DescribeModel": _DESCRIBED,
    # Provenance (registry_app/aws/lineage.py): the jobs that trained and evaluated the packages, and
    # the lineage graph. List and QueryLineage have no resource-level permissions.
    "sagemaker:DescribeTrainingJob": ["arn:aws:sagemaker:*:*:training-job/*"],
    "sagemaker:DescribeProcessingJob": ["arn:aws:sagemaker:*:*:processing-job/*"],
    "sagemaker:DescribeArtifact": ["arn:aws:sagemaker:*:*:artifact/*"],
    "sagemaker:ListArtifacts": ["*"],
    "sagemaker:ListAssociations": ["*"],
    "sagemaker:QueryLineage": ["*"],
    "sagemaker:UpdateModelPackage": ["arn:aws:sagemaker:*:*:model-package/*"],
    "s3:GetObject": ["arn:aws:s3:::REPORT_BUCKET/*", "arn:aws:s3:::TRAIL_BUCKET/*", _ANCHOR_OBJECTS],
    "s3:ListBucket": ["arn:aws:s3:::TRAIL_BUCKET", _ANCHOR_BUCKET],
    "cloudtrail:LookupEvents": ["*"],
    "cloudtrail:ListPublicKeys": ["*"],
    "s3:PutObject": [_ANCHOR_OBJECTS],
    "s3:GetBucketObjectLockConfiguration": [_ANCHOR_BUCKET],
    "sqs:ReceiveMessage": ["arn:aws:sqs:REGION:ACCOUNT_ID:QUEUE_NAME"],
    "sqs:DeleteMessage": ["arn:aws:sqs:REGION:ACCOUNT_ID:QUEUE_NAME"],
    "sqs:GetQueueAttributes": ["arn:aws:sqs:REGION:ACCOUNT_ID:QUEUE_NAME"],
}

ALLOWED, DENIED, NOT_CHECKABLE = "allowed", "denied", "not checkable"
# What a service (or a fake of one) answers for an operation it does not implement.
_NOT_IMPLEMENTED = {"NotImplementedError", "NotImplemented", "UnknownOperationException", "InvalidAction"}


@dataclass
class CheckResult:
    action: str
    status: str
    detail: str = ""
    statement: dict[str, Any] | None = None  # the statement to add, when denied
    policy: str = ""  # the docs/iam file that holds it


@dataclass
class _Found:
    """What the list calls found, for the describe checks that follow."""

    account: str = ""
    group: str = ""
    package: str = ""
    card: str = ""
    endpoint: str = ""
    report_uri: str = ""
    results: list[CheckResult] = field(default_factory=list)


def statement(action: str, *, values: dict[str, str] | None = None) -> dict[str, Any]:
    """The IAM statement granting ``action``, placeholders filled from ``values`` where known."""
    resources = [r for r in RESOURCES.get(action, ["*"]) if "ANCHOR_" not in r] or ["*"]
    for key, value in (values or {}).items():
        if value:
            resources = [r.replace(key, value) for r in resources]
    sid = "".join(part.capitalize() for part in action.replace(":", " ").split())
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": action,
        "Resource": resources[0] if len(resources) == 1 else resources,
    }


def queue_arn_parts(queue_url: str) -> tuple[str, str, str]:
    """(region, account, name) of ``https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`` (blanks if unknown)."""
    parts = queue_url.rstrip("/").split("/")
    host = parts[2] if len(parts) > 2 else ""
    region = host.split(".")[1] if host.startswith("sqs.") and host.count(".") >= 2 else ""
    return region, parts[-2] if len(parts) >= 5 else "", parts[-1] if len(parts) >= 5 else ""


def check_source(
    cfg: SourceConfig,
    *,
    queue_url: str = "",
    trail_bucket: str = "",
    report_uri: str = "",
    client_factory: Callable[[SourceConfig], RegistryClient] | None = None,
) -> list[CheckResult]:
    """Exercise every read permission against the source's account; never writes, never consumes."""
    make = client_factory or (lambda c: RegistryClient(c, max_attempts=2))
    client = make(cfg)
    found = _Found(report_uri=report_uri)
    region, queue_account, queue_name = queue_arn_parts(queue_url)
    values = {"REGION": region or cfg.region, "QUEUE_NAME": queue_name, "TRAIL_BUCKET": trail_bucket}

    def run(action: str, call: Callable[[], Any], policy: str = "read-only-policy.json") -> Any:
        result, value = _attempt(action, call, values, policy)
        found.results.append(result)
        return value

    identity = run(
        "sts:AssumeRole" if cfg.role_arn else "sts:GetCallerIdentity", client.account_id, "trust-policy.json"
    )
    if identity is None:
        return found.results + [_skipped(a, "no identity: the checks below need it") for a in _READ_CHECKS]
    found.account = identity
    values["ACCOUNT_ID"] = queue_account or identity
    if cfg.role_arn:
        probe = SourceConfig(
            cfg.name, cfg.region, cfg.role_arn, cfg.external_id, source_identity="check-registry-source"
        )
        run("sts:SetSourceIdentity", make(probe).account_id, "trust-policy.json")
    else:
        found.results.append(_skipped("sts:SetSourceIdentity", "no role: pushes use the worker's own identity"))
    _registry_checks(client, found, run)
    _other_checks(client, found, run, queue_url=queue_url, trail_bucket=trail_bucket, values=values)
    return found.results


def _registry_checks(client: RegistryClient, found: _Found, run: Callable[..., Any]) -> None:
    sm = "sagemaker"
    groups = run(
        f"{sm}:ListModelPackageGroups", lambda: client._call("sagemaker", "ListModelPackageGroups", MaxResults=1)
    )
    summaries = (groups or {}).get("ModelPackageGroupSummaryList") or []
    found.group = summaries[0]["ModelPackageGroupName"] if summaries else ""
    search = run(f"{sm}:Search", lambda: client._call("sagemaker", "Search", Resource="ModelPackage", MaxResults=1))
    records = [r["ModelPackage"] for r in (search or {}).get("Results") or [] if r.get("ModelPackage")]
    listed = run(f"{sm}:ListModelPackages", lambda: client._call("sagemaker", "ListModelPackages", MaxResults=1))
    packages = (listed or {}).get("ModelPackageSummaryList") or []
    found.package = (records or packages or [{}])[0].get("ModelPackageArn", "")
    if found.group:
        described = run(f"{sm}:DescribeModelPackageGroup", lambda: client.describe_group(found.group))
        arn = (described or {}).get("ModelPackageGroupArn")
        if arn:
            run(f"{sm}:ListTags", lambda: client._call("sagemaker", "ListTags", ResourceArn=arn, MaxResults=50))
        else:
            found.results.append(_skipped(f"{sm}:ListTags", "no group described to list the tags of"))
    else:
        for action in (f"{sm}:DescribeModelPackageGroup", f"{sm}:ListTags"):
            found.results.append(_skipped(action, "the registry has no model package group to describe"))
    if found.package:
        package = run(f"{sm}:DescribeModelPackage", lambda: client.describe_package(found.package))
        found.report_uri = found.report_uri or _first_report_uri(package or {})
    else:
        found.results.append(_skipped(f"{sm}:DescribeModelPackage", "the registry has no model package"))
    cards = run(f"{sm}:ListModelCards", lambda: client._call("sagemaker", "ListModelCards", MaxResults=1))
    card_list = (cards or {}).get("ModelCardSummaries") or []
    if card_list:
        run(f"{sm}:DescribeModelCard", lambda: client.describe_model_card(card_list[0]["ModelCardName"]))
    else:
        found.results.append(_skipped(f"{sm}:DescribeModelCard", "no model card to describe"))
    endpoints = run(f"{sm}:ListEndpoints", lambda: client._call("sagemaker", "ListEndpoints", MaxResults=1))
    endpoint_list = (endpoints or {}).get("Endpoints") or []
    if endpoint_list:
        endpoint = run(f"{sm}:DescribeEndpoint", lambda: client.describe_endpoint(endpoint_list[0]["EndpointName"]))
        config_name = (endpoint or {}).get("EndpointConfigName") or ""
        config = run(f"{sm}:DescribeEndpointConfig", lambda: client.describe_endpoint_config(config_name))
        models = [v.get("ModelName") for v in (config or {}).get("ProductionVariants") or [] if v.get("ModelName")]
        if models:
            run(f"{sm}:DescribeModel", lambda: client.describe_model(models[0]))
        else:
            found.results.append(_skipped(f"{sm}:DescribeModel", "no model behind the endpoint to describe"))
    else:
        for action in ("DescribeEndpoint", "DescribeEndpointConfig", "DescribeModel"):
            found.results.append(_skipped(f"{sm}:{action}", "no endpoint to describe"))
    found.results.append(
        _skipped(f"{sm}:UpdateModelPackage", "a write: never attempted by a check", "push-policy.json")
    )


def _other_checks(
    client: RegistryClient,
    found: _Found,
    run: Callable[..., Any],
    *,
    queue_url: str,
    trail_bucket: str,
    values: dict[str, str],
) -> None:
    if found.report_uri:
        bucket = parse_s3_uri(found.report_uri)[0] if found.report_uri.startswith("s3://") else ""
        values["REPORT_BUCKET"] = bucket
        run("s3:GetObject", lambda: _first_byte(client, found.report_uri))
    else:
        found.results.append(_skipped("s3:GetObject", "no evaluation report known to fetch"))
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    lookup = {"StartTime": now - dt.timedelta(hours=1), "EndTime": now, "MaxResults": 1}
    run("cloudtrail:LookupEvents", lambda: client._call("cloudtrail", "LookupEvents", **lookup))
    if trail_bucket:
        run("s3:ListBucket", lambda: client._call("s3", "ListObjectsV2", Bucket=trail_bucket, MaxKeys=1))
        keys = {"StartTime": now - dt.timedelta(hours=1), "EndTime": now}
        run("cloudtrail:ListPublicKeys", lambda: client._call("cloudtrail", "ListPublicKeys", **keys))
    else:
        found.results.append(_skipped("s3:ListBucket", "no CloudTrail bucket configured for this source"))
        found.results.append(_skipped("cloudtrail:ListPublicKeys", "no CloudTrail bucket: no digest to check"))
    if queue_url:
        attrs = {"QueueUrl": queue_url, "AttributeNames": ["QueueArn"]}
        run("sqs:GetQueueAttributes", lambda: client._call("sqs", "GetQueueAttributes", **attrs))
        for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage"):
            found.results.append(_skipped(action, "would consume the source's events: never attempted"))
    else:
        for action in ("sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:DeleteMessage"):
            found.results.append(_skipped(action, "no events queue configured for this source"))


_READ_CHECKS = [a for a in RESOURCES if a != "sagemaker:UpdateModelPackage" and a not in _ANCHOR_ONLY]


def _attempt(action: str, call: Callable[[], Any], values: dict[str, str], policy: str) -> tuple[CheckResult, Any]:
    try:
        value = call()
    except RoleAssumptionError as exc:
        return CheckResult(action, DENIED, str(exc), _role_statement(), policy), None
    except AccessDeniedError as exc:
        detail = str(exc)
        if action == "s3:GetObject":
            detail += " (S3 also answers 403 for a missing key when s3:ListBucket is not granted)"
        return CheckResult(action, DENIED, detail, statement(action, values=values), _policy_of(action, policy)), None
    except NotFoundError as exc:
        # S3 only answers NoSuchKey to a principal allowed to read the key.
        if action == "s3:GetObject" and exc.code != "NoSuchBucket":
            return CheckResult(action, ALLOWED, f"the object is gone, but reading was allowed ({exc})"), {}
        return CheckResult(action, NOT_CHECKABLE, f"not a permission answer: {exc}"), None
    except AwsError as exc:
        if exc.code in _NOT_IMPLEMENTED or exc.code == "501":
            return CheckResult(action, NOT_CHECKABLE, f"the service does not implement it ({_short(exc)})"), None
        if exc.retryable:
            why = "the service failed, so nothing was learnt (a fake AWS answers HTTP 500 for calls it lacks)"
            return CheckResult(action, NOT_CHECKABLE, f"{why}: {_short(exc)}"), None
        return CheckResult(action, NOT_CHECKABLE, f"not a permission answer: {_short(exc)}"), None
    return CheckResult(action, ALLOWED), value if value is not None else {}


def _short(exc: Exception, limit: int = 160) -> str:
    """One line of an error, without the HTML a failing server may send."""
    text = " ".join(re.sub(r"<[^>]+>", " ", str(exc)).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _first_byte(client: RegistryClient, uri: str) -> dict[str, Any]:
    """GET one byte of a report: proves s3:GetObject without reading the report."""
    bucket, key = parse_s3_uri(uri)
    try:
        response = client._call("s3", "GetObject", Bucket=bucket, Key=key, Range="bytes=0-0")
    except AwsError as exc:
        if exc.code == "InvalidRange":  # an empty object: the read itself was allowed
            return {}
        raise
    response["Body"].close()
    return {}


def _role_statement() -> dict[str, Any]:
    return {
        "Sid": "DashboardAssumesThisRole",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::DASHBOARD_ACCOUNT_ID:role/DASHBOARD_WORKER_ROLE"},
        "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
        "Condition": {"StringEquals": {"sts:ExternalId": "EXTERNAL_ID"}},
    }


def _policy_of(action: str, default: str) -> str:
    return "push-policy.json" if action == "sagemaker:UpdateModelPackage" else default


def _skipped(action: str, why: str, policy: str = "") -> CheckResult:
    return CheckResult(action, NOT_CHECKABLE, why, policy=policy)


def _first_report_uri(package: dict[str, Any]) -> str:
    for section in (package.get("ModelMetrics") or {}).values():
        for source in (section or {}).values():
            uri = (source or {}).get("S3Uri") if isinstance(source, dict) else None
            if uri:
                return str(uri)
    return ""
