from __future__ import annotations

from .api import ApiToken
from .audit import AuditCursor, AuditLogEntry, CloudTrailEvent, EndpointDeployment, OutsideDecision
from .evidence import AuditAnchor, AuditVerification, TrailDigest, TrailLogFile
from .findings import Finding
from .notifications import WebhookEndpoint
from .policy_versions import PolicyVersion, PolicyVersionImmutable
from .provenance import (
    JobData,
    LineageEdge,
    LineageEntity,
    PackageLineage,
    PackageTraining,
    ProcessingJob,
    TrainingJob,
)
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
from .revalidation import Revalidation, RevalidationSignOff
from .review_state import ReviewState, ReviewStateCheck, ReviewStateRole
from .runs import SyncRun
from .signoffs import (
    ApprovalPolicy,
    Decision,
    GroupWatcher,
    Notification,
    NotificationKind,
    NotificationPreference,
    PolicyException,
    PushOutbox,
    SignOff,
)
from .sources import RegistrySource

__all__ = [
    "ApiToken",
    "AuditAnchor",
    "AuditCursor",
    "AuditVerification",
    "TrailDigest",
    "TrailLogFile",
    "AuditLogEntry",
    "CloudTrailEvent",
    "EndpointDeployment",
    "Finding",
    "OutsideDecision",
    "ApprovalPolicy",
    "Decision",
    "GroupWatcher",
    "Notification",
    "NotificationKind",
    "NotificationPreference",
    "PolicyException",
    "PolicyVersion",
    "PolicyVersionImmutable",
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
    "Revalidation",
    "RevalidationSignOff",
    "ReviewState",
    "ReviewStateCheck",
    "ReviewStateRole",
    "SyncRun",
    "JobData",
    "LineageEdge",
    "LineageEntity",
    "PackageLineage",
    "PackageTraining",
    "ProcessingJob",
    "TrainingJob",
    "WebhookEndpoint",
]
