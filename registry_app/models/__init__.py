from __future__ import annotations

from .api import ApiToken
from .audit import AuditCursor, AuditLogEntry, CloudTrailEvent, EndpointDeployment, OutsideDecision
from .notifications import WebhookEndpoint
from .registry import (
    Endpoint,
    EndpointVariant,
    EvaluationReport,
    Metric,
    ModelCard,
    ModelPackage,
    ModelPackageGroup,
    PackageObservation,
)
from .runs import SyncRun
from .signoffs import (
    ApprovalPolicy,
    Decision,
    GroupWatcher,
    Notification,
    NotificationKind,
    NotificationPreference,
    PushOutbox,
    SignOff,
)
from .sources import RegistrySource

__all__ = [
    "ApiToken",
    "AuditCursor",
    "AuditLogEntry",
    "CloudTrailEvent",
    "EndpointDeployment",
    "OutsideDecision",
    "ApprovalPolicy",
    "Decision",
    "GroupWatcher",
    "Notification",
    "NotificationKind",
    "NotificationPreference",
    "PushOutbox",
    "SignOff",
    "Endpoint",
    "EndpointVariant",
    "EvaluationReport",
    "Metric",
    "ModelCard",
    "ModelPackage",
    "ModelPackageGroup",
    "PackageObservation",
    "RegistrySource",
    "SyncRun",
    "WebhookEndpoint",
]
