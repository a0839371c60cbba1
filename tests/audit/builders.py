"""Builders for audit rows (CloudTrail records as in aws-formats §2.4, deployments, sign-offs, pushes)."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from typing import Any

from registry_app.models import (
    CloudTrailEvent,
    Decision,
    EndpointDeployment,
    ModelPackage,
    Notification,
    NotificationKind,
    PackageObservation,
    PushOutbox,
    SignOff,
)
from tests.factories import ACCOUNT_ID

_ids = itertools.count(1)
T0 = dt.datetime(2025, 3, 10, 9, 0, tzinfo=dt.UTC)


def at(hours: float = 0, **delta: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours, **delta)


def user_identity(name: str, role: str = "AmazonSageMaker-ExecutionRole-Risk") -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLEID2:{name}",
        "arn": f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role}/{name}",
        "accountId": ACCOUNT_ID,
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{role}", "userName": role},
            "attributes": {"creationDate": "2025-03-14T09:01:02Z", "mfaAuthenticated": "false"},
            "sourceIdentity": name,
        },
    }


def cloudtrail(
    event_name: str,
    when: dt.datetime,
    *,
    actor: str = "alice",
    package: ModelPackage | None = None,
    request: dict[str, Any] | None = None,
    endpoint_name: str = "",
    resource_name: str = "",
    error_code: str = "",
    event_id: str | None = None,
    resource_type: str | None = None,
) -> CloudTrailEvent:
    event_id = event_id or str(uuid.UUID(int=next(_ids)))
    params = dict(request or {})
    if package is not None:
        params.setdefault("modelPackageArn", package.arn)
    if endpoint_name:
        params.setdefault("endpointName", endpoint_name)
    raw = {
        "eventVersion": "1.09",
        "userIdentity": user_identity(actor),
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "sagemaker.amazonaws.com",
        "eventName": event_name,
        "awsRegion": "eu-west-1",
        "requestParameters": params,
        "eventID": event_id,
        "readOnly": False,
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT_ID,
    }
    if error_code:
        raw["errorCode"] = error_code
    return CloudTrailEvent.objects.create(
        event_id=event_id,
        via=CloudTrailEvent.Via.LOOKUP,
        event_time=when,
        event_name=event_name,
        event_source="sagemaker.amazonaws.com",
        aws_region="eu-west-1",
        account_id=ACCOUNT_ID,
        read_only=False,
        error_code=error_code,
        actor_type="AssumedRole",
        actor_arn=raw["userIdentity"]["arn"],
        actor_name=actor,
        resource_type=resource_type
        if resource_type is not None
        else (CloudTrailEvent.ResourceType.PACKAGE if package else CloudTrailEvent.ResourceType.ENDPOINT),
        resource_name=resource_name or (package.arn if package else endpoint_name),
        package=package,
        group=package.group if package else None,
        endpoint_name=endpoint_name,
        raw=raw,
    )


def status_call(package: ModelPackage, status: str, when: dt.datetime, actor: str = "alice") -> CloudTrailEvent:
    return cloudtrail("UpdateModelPackage", when, actor=actor, package=package, request={"modelApprovalStatus": status})


def observe(
    package: ModelPackage, when: dt.datetime, changes: dict[str, Any], change: str = "updated"
) -> PackageObservation:
    return PackageObservation.objects.create(package=package, observed_at=when, change=change, changes=changes)


def deployment(
    endpoint: str,
    package: ModelPackage | None,
    start: dt.datetime,
    end: dt.datetime | None = None,
    *,
    variant: str = "AllTraffic",
    weight: float = 1.0,
    evidence: dict[str, Any] | None = None,
) -> EndpointDeployment:
    return EndpointDeployment.objects.create(
        endpoint_name=endpoint,
        variant_name=variant,
        config_name=f"{endpoint}-cfg-{start:%H%M}",
        model_name=f"{endpoint}-model-{package.version if package else 'x'}",
        package_arn=package.arn if package else "",
        package=package,
        weight=weight,
        started_at=start,
        ended_at=end,
        evidence=evidence or {},
    )


def signoff(package: ModelPackage, user: Any, role: str, when: dt.datetime, decision: str = "approve") -> SignOff:
    row = SignOff.objects.create(
        package=package, user=user, role=role, decision=decision, comment="", fingerprint="f" * 64
    )
    SignOff.objects.filter(pk=row.pk).update(created_at=when)
    row.refresh_from_db()
    return row


def decision(package: ModelPackage, status: str, when: dt.datetime, user: Any = None) -> Decision:
    row = Decision.objects.create(package=package, kind=Decision.Kind.POLICY, status=status, decided_by=user)
    Decision.objects.filter(pk=row.pk).update(created_at=when)
    row.refresh_from_db()
    return row


def push(
    package: ModelPackage,
    target: str,
    when: dt.datetime,
    *,
    state: str = PushOutbox.State.SENT,
    sent: dt.datetime | None = None,
    decision_row: Decision | None = None,
    acting: str = "carol",
) -> PushOutbox:
    row = PushOutbox.objects.create(
        package=package,
        decision=decision_row,
        kind=PushOutbox.Kind.DECISION,
        target_status=target,
        expected_status="PendingManualApproval",
        acting_username=acting,
        state=state,
    )
    PushOutbox.objects.filter(pk=row.pk).update(
        created_at=when, updated_at=sent or when, sent_at=sent if state == PushOutbox.State.SENT else None
    )
    row.refresh_from_db()
    return row


def notification(package: ModelPackage, user: Any, when: dt.datetime) -> Notification:
    row = Notification.objects.create(
        package=package, kind=NotificationKind.DECIDED, recipient=user, key=f"k{next(_ids)}", state="sent"
    )
    Notification.objects.filter(pk=row.pk).update(created_at=when)
    return row
