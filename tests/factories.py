"""Typed factory_boy factories for the registry mirror, shared by every test package.

Defaults describe a plausible, complete package (all reproducibility keys, a container with a digest,
a principal in CreatedBy); override fields to build the gaps a test is about. ``arn`` fields derive
from the source's region/account and the names, so related rows stay consistent.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from factory.django import DjangoModelFactory

from registry_app.models import (
    Endpoint,
    EndpointVariant,
    EvaluationReport,
    Metric,
    ModelCard,
    ModelPackage,
    ModelPackageGroup,
    PackageObservation,
    RegistrySource,
    SyncRun,
)
from registry_app.models.registry import ApprovalStatus, CardStatus

ACCOUNT_ID = "111122223333"

# Where a MetricsSource can sit in ModelMetrics; reports created without a slot cycle through these.
REPORT_SLOTS = (
    "ModelQuality.Statistics",
    "ModelQuality.Constraints",
    "ModelDataQuality.Statistics",
    "ModelDataQuality.Constraints",
    "Bias.Report",
    "Bias.PreTrainingReport",
    "Bias.PostTrainingReport",
    "Explainability.Report",
)


def _ago(**kwargs: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(**kwargs)


def user_context(name: str = "alice", *, account: str = ACCOUNT_ID, role: str = "RiskApprover") -> dict[str, Any]:
    """A SageMaker ``UserContext`` (CreatedBy / LastModifiedBy) for an assumed-role session."""
    return {
        "IamIdentity": {
            "Arn": f"arn:aws:sts::{account}:assumed-role/{role}/{name}",
            "PrincipalId": f"AROAEXAMPLE:{name}",
            "SourceIdentity": name,
        }
    }


class UserFactory(DjangoModelFactory[AbstractBaseUser]):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    is_staff = False
    password = factory.django.Password("pw-test-123!")


class RegistrySourceFactory(DjangoModelFactory[RegistrySource]):
    class Meta:
        model = RegistrySource
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"source-{n}")
    region = "eu-west-1"
    account_id = ACCOUNT_ID
    enabled = True


class SyncRunFactory(DjangoModelFactory[SyncRun]):
    class Meta:
        model = SyncRun

    source = factory.SubFactory(RegistrySourceFactory)
    mode = SyncRun.Mode.INCREMENTAL
    trigger = SyncRun.Trigger.BEAT
    status = SyncRun.Status.SUCCEEDED
    started_at = factory.LazyFunction(lambda: _ago(minutes=5))
    finished_at = factory.LazyFunction(lambda: _ago(minutes=4))
    duration_s = 61.5
    aws_seconds = 12.25
    aws_calls = factory.LazyFunction(lambda: {"ListModelPackageGroups": 1, "Search": 3, "DescribeModelPackage": 4})
    counts = factory.LazyFunction(lambda: {"packages_seen": 12, "packages_updated": 2})
    errors = factory.LazyFunction(list)


class ModelPackageGroupFactory(DjangoModelFactory[ModelPackageGroup]):
    class Meta:
        model = ModelPackageGroup

    source = factory.SubFactory(RegistrySourceFactory)
    name = factory.Sequence(lambda n: f"group-{n}")
    arn = factory.LazyAttribute(
        lambda o: f"arn:aws:sagemaker:{o.source.region}:{o.owner_account or ACCOUNT_ID}:model-package-group/{o.name}"
    )
    owner_account = factory.LazyAttribute(lambda o: o.source.account_id or ACCOUNT_ID)
    description = factory.LazyAttribute(lambda o: f"Models for {o.name}")
    tags = factory.LazyFunction(lambda: {"team": "risk", "cost-centre": "ml-42"})
    status = "Completed"
    created_at = factory.LazyFunction(lambda: _ago(days=90))
    created_by = factory.LazyFunction(lambda: user_context("pipeline", role="SageMakerPipelineRole"))
    last_seen_at = factory.LazyFunction(timezone.now)


class ModelCardFactory(DjangoModelFactory[ModelCard]):
    class Meta:
        model = ModelCard

    source = factory.SubFactory(RegistrySourceFactory)
    name = factory.Sequence(lambda n: f"card-{n}")
    arn = factory.LazyAttribute(lambda o: f"arn:aws:sagemaker:{o.source.region}:{ACCOUNT_ID}:model-card/{o.name}")
    version = 1
    status = CardStatus.APPROVED
    content = factory.LazyFunction(
        lambda: {
            "model_overview": {"model_description": "Probability of default", "model_owner": "team-risk"},
            "intended_uses": {"purpose_of_model": "Pre-screening", "risk_rating": "High"},
        }
    )
    created_at = factory.LazyFunction(lambda: _ago(days=30))
    last_modified_at = factory.LazyFunction(lambda: _ago(days=2))


def _inference_specification(o: Any) -> dict[str, Any]:
    return {
        "Containers": [
            {
                "Image": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1",
                "ImageDigest": "sha256:" + "0f1e2d3c" * 8,
                "ModelDataUrl": f"s3://ml-artifacts/{o.group.name}/{o.version}/model.tar.gz",
            }
        ],
        "SupportedRealtimeInferenceInstanceTypes": ["ml.m5.large", "ml.m5.xlarge"],
        "SupportedTransformInstanceTypes": ["ml.m5.xlarge"],
        "SupportedContentTypes": ["text/csv"],
        "SupportedResponseMIMETypes": ["text/csv"],
    }


def _customer_metadata(o: Any) -> dict[str, str]:
    return {
        "TrainingDataS3VersionId": f"v{o.version}-3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
        "ContainerImageDigest": "sha256:" + "0f1e2d3c" * 8,
        "GitCommitSha": "9fceb02d0ae598e95dc970b74767f19372d61af8",
        "RequirementsHash": "sha256:" + "ab" * 32,
        "owner": "team-risk",
    }


class ModelPackageFactory(DjangoModelFactory[ModelPackage]):
    class Meta:
        model = ModelPackage

    group = factory.SubFactory(ModelPackageGroupFactory)
    source = factory.SelfAttribute("group.source")
    version = factory.Sequence(lambda n: n + 1)
    arn = factory.LazyAttribute(
        lambda o: f"arn:aws:sagemaker:{o.group.source.region}:{ACCOUNT_ID}:model-package/{o.group.name}/{o.version}"
    )
    description = factory.LazyAttribute(lambda o: f"{o.group.name} version {o.version}")
    approval_status = ApprovalStatus.PENDING
    package_status = "Completed"
    registration_type = "Registered"
    created_at = factory.LazyFunction(lambda: _ago(days=10))
    created_by = factory.LazyFunction(lambda: user_context("pipeline", role="SageMakerPipelineRole"))
    last_modified_at = factory.LazyFunction(lambda: _ago(days=1))
    last_modified_by = factory.LazyFunction(lambda: user_context("alice"))
    inference_specification = factory.LazyAttribute(_inference_specification)
    customer_metadata = factory.LazyAttribute(_customer_metadata)
    metadata_properties = factory.LazyAttribute(
        lambda o: {
            "GeneratedBy": f"arn:aws:sagemaker:eu-west-1:{ACCOUNT_ID}:training-job/{o.group.name}-{o.version}",
            "Repository": "https://git.example.com/ml/credit-risk",
            "CommitId": "9fceb02d0ae598e95dc970b74767f19372d61af8",
        }
    )
    embedded_card_status = ""
    embedded_card_content = None
    raw = factory.LazyAttribute(
        lambda o: {
            "ModelPackageArn": o.arn,
            "ModelPackageGroupName": o.group.name,
            "ModelPackageVersion": o.version,
            "ModelApprovalStatus": str(o.approval_status),
            "ModelPackageStatus": o.package_status,
        }
    )
    last_synced_at = factory.LazyFunction(timezone.now)


class EvaluationReportFactory(DjangoModelFactory[EvaluationReport]):
    class Meta:
        model = EvaluationReport

    package = factory.SubFactory(ModelPackageFactory)
    slot = factory.Sequence(lambda n: REPORT_SLOTS[n % len(REPORT_SLOTS)])
    s3_uri = factory.LazyAttribute(
        lambda o: f"s3://ml-artifacts/{o.package.group.name}/{o.package.version}/{o.slot.replace('.', '-')}.json"
    )
    content_type = "application/json"
    sha256 = "3f2e1d0c" * 8
    size_bytes = 2048
    status = EvaluationReport.Status.OK
    kind = EvaluationReport.Kind.BINARY
    document = factory.LazyFunction(lambda: {"binary_classification_metrics": {"auc": {"value": 0.912}}})
    fetched_at = factory.LazyFunction(timezone.now)


class MetricFactory(DjangoModelFactory[Metric]):
    class Meta:
        model = Metric

    report = factory.SubFactory(EvaluationReportFactory)
    package = factory.SelfAttribute("report.package")
    name = "auc"
    value = 0.912
    standard_deviation = 0.01
    kind = factory.LazyAttribute(lambda o: o.report.kind or "binary_classification")
    facet = ""
    stage = ""


class EndpointFactory(DjangoModelFactory[Endpoint]):
    class Meta:
        model = Endpoint

    source = factory.SubFactory(RegistrySourceFactory)
    name = factory.Sequence(lambda n: f"endpoint-{n}")
    arn = factory.LazyAttribute(lambda o: f"arn:aws:sagemaker:{o.source.region}:{ACCOUNT_ID}:endpoint/{o.name}")
    status = "InService"
    config_name = factory.LazyAttribute(lambda o: f"{o.name}-config")
    created_at = factory.LazyFunction(lambda: _ago(days=5))
    last_modified_at = factory.LazyFunction(lambda: _ago(days=1))


class EndpointVariantFactory(DjangoModelFactory[EndpointVariant]):
    class Meta:
        model = EndpointVariant

    endpoint = factory.SubFactory(EndpointFactory)
    variant_name = factory.Sequence(lambda n: f"variant-{n}")
    package = factory.SubFactory(ModelPackageFactory)
    package_arn = factory.LazyAttribute(lambda o: o.package.arn if o.package else "")
    model_name = factory.LazyAttribute(lambda o: f"{o.endpoint.name}-model")
    weight = 1.0
    instance_type = "ml.m5.xlarge"
    instance_count = 2


class PackageObservationFactory(DjangoModelFactory[PackageObservation]):
    class Meta:
        model = PackageObservation

    package = factory.SubFactory(ModelPackageFactory)
    observed_at = factory.LazyFunction(timezone.now)
    change = PackageObservation.Change.UPDATED
    changes = factory.LazyFunction(
        lambda: {"approval_status": [ApprovalStatus.PENDING.value, ApprovalStatus.APPROVED.value]}
    )
