"""The package version page: every block of governance evidence, and how gaps are shown."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from registry_app.mirror.selectors import OBSERVATIONS_SHOWN
from registry_app.models import EvaluationReport, ModelPackage, PackageObservation
from registry_app.models.registry import ApprovalStatus
from tests.factories import (
    EndpointFactory,
    EndpointVariantFactory,
    EvaluationReportFactory,
    MetricFactory,
    ModelCardFactory,
    ModelPackageFactory,
    ModelPackageGroupFactory,
    PackageObservationFactory,
    user_context,
)

pytestmark = pytest.mark.django_db


def _url(package: ModelPackage) -> str:
    return reverse("registry:package_detail", args=[package.group.name, package.version])


@pytest.fixture
def package(registry_source) -> ModelPackage:  # type: ignore[no-untyped-def]
    group = ModelPackageGroupFactory(source=registry_source, name="credit-risk")
    card = ModelCardFactory(
        source=registry_source,
        name="credit-risk-card",
        version=3,
        status="Approved",
        content={
            "intended_uses": {"purpose_of_model": "Estimate 12-month PD", "risk_rating": "High"},
            "additional_information": {"caveats_and_recommendations": "Retrain quarterly"},
        },
    )
    return ModelPackageFactory(
        group=group,
        version=7,
        description="XGBoost retrain 2025-03",
        approval_status=ApprovalStatus.APPROVED,
        approval_description="Meets AUC >= 0.80 gate",
        lifecycle_stage="Production",
        lifecycle_stage_status="Approved",
        lifecycle_stage_description="Go-live 2025-03-14",
        created_by={"UserProfileName": "data-scientist-1"},
        last_modified_by=user_context("alice"),
        customer_metadata={"TrainingDataS3VersionId": "abc123", "GitCommitSha": "9fceb02", "ticket": "GOV-1234"},
        model_card=card,
        embedded_card_status="PendingReview",
        raw={"ModelPackageArn": "arn:x", "CustomerMetadataProperties": {"ticket": "GOV-1234"}},
    )


def test_package_page_shows_metadata_and_principals(reviewer_client: Client, package: ModelPackage) -> None:
    html = reviewer_client.get(_url(package)).content.decode()

    assert package.arn in html
    assert "XGBoost retrain 2025-03" in html
    assert "Meets AUC &gt;= 0.80 gate" in html
    assert "Production" in html and "Go-live 2025-03-14" in html
    assert "data-scientist-1" in html  # UserProfileName when there is no IamIdentity
    assert ">alice<" in html  # SourceIdentity preferred over the role ARN
    assert "Completed" in html


def test_reproducibility_gaps_are_flagged(reviewer_client: Client, package: ModelPackage) -> None:
    response = reviewer_client.get(_url(package))
    html = response.content.decode()

    assert response.context["detail"].missing_reproducibility == ["ContainerImageDigest", "RequirementsHash"]
    assert "2 of 4 reproducibility properties missing" in html
    assert html.count(">missing</span>") == 2
    assert "abc123" in html and "GOV-1234" in html  # all customer metadata is listed too


def test_metadata_and_inference_specification(reviewer_client: Client, package: ModelPackage) -> None:
    html = reviewer_client.get(_url(package)).content.decode()
    assert "training-job/credit-risk-7" in html
    assert "https://git.example.com/ml/credit-risk" in html
    assert "9fceb02d0ae598e95dc970b74767f19372d61af8" in html
    assert "sagemaker-xgboost:1.7-1" in html
    assert "sha256:0f1e2d3c" in html
    assert "s3://ml-artifacts/credit-risk/7/model.tar.gz" in html
    assert "ml.m5.large" in html and "Real-time inference" in html


def test_model_card_sections_and_statuses(reviewer_client: Client, package: ModelPackage) -> None:
    response = reviewer_client.get(_url(package))
    html = response.content.decode()
    card = response.context["detail"].card
    assert card.origin == "standalone"
    assert [s.title for s in card.sections] == ["Intended uses", "Additional information"]
    assert "Estimate 12-month PD" in html and "Retrain quarterly" in html
    assert "credit-risk-card" in html and "version 3" in html
    assert "Pending review" in html  # the embedded card's status is shown as well


def test_embedded_card_is_used_without_a_standalone_card(reviewer_client: Client, registry_source) -> None:  # type: ignore[no-untyped-def]
    package = ModelPackageFactory(
        group__source=registry_source,
        embedded_card_status="Draft",
        embedded_card_content={
            "evaluation_details": [
                {
                    "name": "holdout",
                    "metric_groups": [
                        {
                            "name": "binary",
                            "metric_data": [
                                {"name": "auc", "type": "number", "value": 0.83},
                                {
                                    "name": "cm",
                                    "type": "matrix",
                                    "value": [[900, 50], [40, 110]],
                                    "x_axis_name": ["0", "1"],
                                    "y_axis_name": ["0", "1"],
                                },
                                {
                                    "name": "roc",
                                    "type": "linear_graph",
                                    "value": [[0, 0], [0.1, 0.6], [1, 1]],
                                    "x_axis_name": "fpr",
                                    "y_axis_name": "tpr",
                                },
                            ],
                        }
                    ],
                }
            ]
        },
    )
    response = reviewer_client.get(_url(package))
    html = response.content.decode()
    assert response.context["detail"].card.origin == "embedded"
    assert "holdout" in html
    assert "<svg" in html  # the ROC curve, when registry_app.mirror.cards turns linear graphs into curves
    assert ">900<" in html  # the matrix cells


def test_card_that_cannot_be_laid_out_does_not_break_the_page(
    reviewer_client: Client, package: ModelPackage, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(content: dict) -> list:
        raise RuntimeError("unexpected card shape")

    monkeypatch.setattr("registry_app.mirror.selectors.card_sections", boom)
    response = reviewer_client.get(_url(package))
    assert response.status_code == 200
    assert "could not be laid out" in response.content.decode()


def test_reports_metrics_and_failed_report(reviewer_client: Client, package: ModelPackage) -> None:
    quality = EvaluationReportFactory(
        package=package,
        slot="ModelQuality.Statistics",
        content_digest="sha256:3f2e1d0c",
        confusion_matrix={"labels": ["0", "1"], "matrix": [[901, 49], [40, 110]]},
        curves={"roc": {"x": [0, 0.2, 1], "y": [0, 0.7, 1], "x_label": "False positive rate", "y_label": "TPR"}},
    )
    MetricFactory(report=quality, name="auc", value=0.912, standard_deviation=0.004)
    bias = EvaluationReportFactory(package=package, slot="Bias.PostTrainingReport", kind="clarify_bias")
    MetricFactory(report=bias, name="DPPL", value=-0.0312, facet="Gender=1", stage="post_training")
    EvaluationReportFactory(
        package=package,
        slot="Explainability.Report",
        status=EvaluationReport.Status.FETCH_ERROR,
        error="AccessDenied: s3:GetObject on s3://ml-artifacts/explain/analysis.json",
        kind="",
    )

    html = reviewer_client.get(_url(package)).content.decode()

    assert "ModelQuality.Statistics" in html and "sha256:3f2e1d0c" in html
    assert "0.912" in html and "0.004" in html
    assert "DPPL" in html and "Gender=1" in html and "post_training" in html
    assert 'role="alert"><strong>Could not fetch:</strong> AccessDenied: s3:GetObject' in html
    assert ">901<" in html and "<svg" in html


def test_deployments_and_observations(reviewer_client: Client, package: ModelPackage) -> None:
    endpoint = EndpointFactory(source=package.source, name="credit-risk-prod")
    EndpointVariantFactory(endpoint=endpoint, package=package, variant_name="Blue", weight=0.9)
    PackageObservationFactory(
        package=package,
        change=PackageObservation.Change.UPDATED,
        changes={"approval_status": ["PendingManualApproval", "Approved"], "lifecycle_stage": [None, "Production"]},
    )

    html = reviewer_client.get(_url(package)).content.decode()

    assert "credit-risk-prod" in html and "Blue" in html and "0.9" in html
    assert "approval_status" in html and "PendingManualApproval" in html
    assert "lifecycle_stage" in html and "∅" in html


def test_only_latest_observations_are_shown(reviewer_client: Client, package: ModelPackage) -> None:
    for _ in range(OBSERVATIONS_SHOWN + 5):
        PackageObservationFactory(package=package)
    detail = reviewer_client.get(_url(package)).context["detail"]
    assert len(detail.observations) == OBSERVATIONS_SHOWN
    assert detail.more_observations is True


def test_deleted_package_banner(reviewer_client: Client, registry_source) -> None:  # type: ignore[no-untyped-def]
    package = ModelPackageFactory(group__source=registry_source, deleted_at=timezone.now())
    html = reviewer_client.get(_url(package)).content.decode()
    assert "Deleted from registry at" in html
    assert "banner-deleted" in html


def test_raw_json_is_pretty_printed_in_details(reviewer_client: Client, package: ModelPackage) -> None:
    html = reviewer_client.get(_url(package)).content.decode()
    assert '<details class="raw">' in html
    assert "&quot;CustomerMetadataProperties&quot;: {\n" in html
