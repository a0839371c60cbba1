"""Seed a SageMaker Model Registry that looks like a real company's, for `make demo` and tests.

Talks to AWS (in practice moto) through boto3's standard chain only: the endpoint comes from
``AWS_ENDPOINT_URL``, credentials and region from the environment. Nothing here is imported by the
app's request or sync paths.

What it creates (deterministic: fixed random seed, no clock-derived values):

* six model package groups of different problem types, five in ``region`` and one in
  ``second_region``, with descriptions and Team / RiskTier / CostCenter tags;
* 4-6 versions per group spanning PendingManualApproval, Approved and Rejected, each with an inference
  spec, MetadataProperties, CustomerMetadataProperties (reproducibility keys on most, missing on some)
  and ModelMetrics pointing at evaluation reports in S3 in the standard Model Monitor / Clarify
  formats (docs: aws-formats section 5); one report is invalid JSON, one points at a missing key;
* standalone model cards in Draft, PendingReview and Approved, named from the packages'
  ``CustomerMetadataProperties.ModelCardName``; an embedded ``ModelCard`` is sent on every package too
  (real AWS keeps it, moto drops it);
* real-time endpoints: ``credit-default-prod`` (one variant), ``fraud-detector-live`` (a 0.9 / 0.1
  canary) and ``demand-forecast-prod`` in the second region, each serving Approved versions through
  ``CreateModel(PrimaryContainer={"ModelPackageName": arn})``;
* the times and people a real registry shows, set through the AWS fake's backdating hook
  (docs/aws-fake.md section 6): ``CreationTime`` spread over six months, pending versions registered
  a given number of hours ago (some past their review SLA, some due soon, some within it);
  ``CreatedBy`` the training pipeline's role session or a Studio user profile (``churn-propensity`` v5
  by ``mlead``, a demo login, who therefore cannot sign it off); ``LastModifiedBy`` whoever decided;
* the CloudTrail trail's log files for all of it in ``cloudtrail_bucket`` (``acme-cloudtrail``), under
  ``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/`` as gzip'd ``{"Records": [...]}`` files
  (docs: aws-formats section 2.5), spread over the last six months: groups created by their owners
  in Studio, versions registered by the pipeline role, approvals and rejections by named people
  through assumed roles carrying ``sourceIdentity`` (the demo logins ``mlead``, ``fairness``,
  ``compliance`` and Studio user profiles), their ``sts:AssumeRole`` calls, model card edits, and
  the endpoints' deployment history (CreateModel → CreateEndpointConfig → CreateEndpoint, updates to
  newer versions, one rollback) ending in the live state above; plus read-only noise, a denied call
  and digest files, which the ingest must skip. These event times are the one clock-derived value:
  they are relative to the seeding time.

Running it twice is harmless: when the first group already exists nothing is created.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import math
import os
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from registry_app.devtools.demo_provenance import seed_provenance

PENDING = "PendingManualApproval"
APPROVED = "Approved"
REJECTED = "Rejected"

BINARY = "binary"
REGRESSION = "regression"
MULTICLASS = "multiclass"

# Same keys as registry_app.models.registry.REPRODUCIBILITY_KEYS (not imported: no Django in aws/ helpers).
REPRODUCIBILITY_KEYS = ("TrainingDataS3VersionId", "ContainerImageDigest", "GitCommitSha", "RequirementsHash")

RANDOM_SEED = 20250314
EXECUTION_ROLE = "service-role/AmazonSageMaker-ExecutionRole-MLPlatform"
JSON = "application/json"

# What a report slot holds: a good report, invalid JSON, a URI with no object behind it, or the
# minimal Pipelines (abalone-style) evaluation.json with only regression_metrics.mse.
REPORT_OK = "ok"
REPORT_BROKEN = "broken"
REPORT_MISSING = "missing"
REPORT_PIPELINES = "pipelines"

CLOUDTRAIL_BUCKET = "acme-cloudtrail"
CLOUDTRAIL_DAYS = 180  # event times spread over this many days before the seeding time


# --------------------------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class VersionSpec:
    status: str
    description: str
    quality: float  # AUC (binary), R² (regression) or accuracy (multiclass)
    approval_note: str = ""
    missing_keys: tuple[str, ...] = ()
    card: str = ""  # standalone model card named in CustomerMetadataProperties.ModelCardName
    report: str = REPORT_OK
    holdout_rows: int = 0  # 0: the group's default; < 200 makes Model Monitor report "NaN" std devs
    image_tag: str = ""  # "": the group's current tag
    disparate_impact: float = 0.92  # fraud group only: drives the Clarify post-training metrics
    explainability: bool = False
    ticket: str = ""
    # Pending versions: registered exactly this many hours before the seeding time (0: the group's
    # spread over six months), so the queue shows versions past their review SLA, due soon and OK.
    hours_ago: float = 0.0
    # Registered from SageMaker Studio by this user profile ("" : the training pipeline, or the group's
    # owner for a notebook version). A demo login here cannot sign the version (separation of duties).
    registrant: str = ""


@dataclass(frozen=True)
class GroupSpec:
    name: str
    second_region: bool
    problem: str
    description: str
    team: str
    risk_tier: str
    cost_center: str
    owner: str
    repository: str
    image: str  # "{region}" and "{tag}" are filled in
    image_tag: str
    task: str
    content_type: str
    instance_types: tuple[str, ...]
    holdout_rows: int
    target: str
    versions: tuple[VersionSpec, ...]
    positive_rate: float = 0.0  # binary
    classes: tuple[str, ...] = ()  # multiclass
    target_std: float = 0.0  # regression: standard deviation of the target, for R² -> RMSE
    operating_fpr: float = 0.1  # binary: false-positive rate at the deployed threshold
    bias: bool = False
    algorithm: str = ""
    objective: tuple[str, str, str] = ("Minimize", "Loss", "logloss")
    hyper_parameters: tuple[tuple[str, str], ...] = ()
    purpose: str = ""
    intended_uses: str = ""
    factors: str = ""
    risk_explanation: str = ""
    business_problem: str = ""
    stakeholders: str = ""
    line_of_business: str = ""
    ethics: str = ""
    caveats: str = ""


@dataclass(frozen=True)
class CardSpec:
    name: str
    group: str
    version: int
    status: str


@dataclass(frozen=True)
class EndpointSpec:
    name: str
    second_region: bool
    variants: tuple[tuple[str, str, int, float], ...]  # (variant name, group, version, weight)
    instance_type: str
    instance_count: int


XGB = "763104351884.dkr.ecr.{region}.amazonaws.com/xgboost-inference:{tag}"
SKLEARN = "141502667606.dkr.ecr.{region}.amazonaws.com/sagemaker-scikit-learn:{tag}"
HF = "763104351884.dkr.ecr.{region}.amazonaws.com/huggingface-pytorch-inference:{tag}"
TORCH = "763104351884.dkr.ecr.{region}.amazonaws.com/pytorch-inference:{tag}"

GROUPS: tuple[GroupSpec, ...] = (
    GroupSpec(
        name="credit-default-xgb",
        second_region=False,
        problem=BINARY,
        description=(
            "12-month probability of default for retail unsecured loans (XGBoost on bureau + application data). "
            "Feeds the credit decision engine; model risk tier 1 under the MRM policy."
        ),
        team="credit-risk",
        risk_tier="High",
        cost_center="CC-4120",
        owner="maria.schmidt@acme.example",
        repository="https://github.com/acme-ml/credit-default-model",
        image=XGB,
        image_tag="1.7-1",
        task="CLASSIFICATION",
        content_type="text/csv",
        instance_types=("ml.m5.large", "ml.m5.xlarge"),
        holdout_rows=48210,
        target="default_12m",
        positive_rate=0.068,
        operating_fpr=0.12,
        algorithm="XGBoost gradient-boosted trees (binary:logistic)",
        hyper_parameters=(("max_depth", "6"), ("eta", "0.05"), ("num_round", "600"), ("scale_pos_weight", "8")),
        purpose="Estimate the 12-month probability of default of retail unsecured loan applicants.",
        intended_uses="Risk-based pricing and pre-screening. Not for automated rejection without a credit officer.",
        factors="Macro-economic shifts; thin-file applicants; changes in bureau data supply.",
        risk_explanation="Directly influences credit decisions for consumers (EU AI Act high-risk use).",
        business_problem="Reduce expected credit losses while keeping approval rates for good customers.",
        stakeholders="Retail credit risk, model risk management, lending operations",
        line_of_business="Retail lending",
        ethics="Protected attributes are excluded from features; disparate impact by age band is monitored monthly.",
        caveats="Retrain quarterly; recalibrate if the observed default rate drifts by more than 20% relative.",
        versions=(
            VersionSpec(
                REJECTED,
                "Baseline XGBoost 1.5 on 2023 applications (31 features).",
                0.781,
                "Rejected by MRC: AUC 0.781 below the 0.80 gate. See MLGOV-1042.",
                image_tag="1.5-1",
                ticket="MLGOV-1042",
            ),
            VersionSpec(
                APPROVED,
                "Adds 6 bureau trend features; monotone constraints on utilisation.",
                0.806,
                "Approved by MRC 2024-11: AUC 0.806 meets gate; fairness review passed.",
                image_tag="1.5-1",
                ticket="MLGOV-1077",
            ),
            VersionSpec(
                APPROVED,
                "Retrain on 2024-Q1..Q3 data (1.42M loans); XGBoost 1.7.",
                0.821,
                "Approved by MRC 2025-01: AUC 0.821; calibration slope 0.98.",
                ticket="MLGOV-1133",
            ),
            VersionSpec(
                REJECTED,
                "Experiment: drops income-verification features to cut latency.",
                0.798,
                "Rejected: AUC fell to 0.798 (v3 0.821); recall on thin-file segment down 4 pts. MLGOV-1187.",
                ticket="MLGOV-1187",
            ),
            VersionSpec(
                APPROVED,
                "Retrain on 2024 full year plus open-banking affordability features.",
                0.834,
                "Approved by MRC 2025-03: AUC 0.834; deployed to credit-default-prod.",
                card="credit-default-xgb-v5",
                ticket="MLGOV-1215",
            ),
            VersionSpec(
                PENDING,
                "Quarterly retrain on data to 2025-Q1; tuned scale_pos_weight.",
                0.842,
                card="credit-default-xgb-v6",
                ticket="MLGOV-1262",
                hours_ago=70,
            ),
        ),
    ),
    GroupSpec(
        name="house-price-regressor",
        second_region=False,
        problem=REGRESSION,
        description=(
            "Automated valuation model for residential property (sale price, thousands of EUR). "
            "Used as a second opinion next to surveyor valuations for mortgage collateral."
        ),
        team="pricing-analytics",
        risk_tier="Low",
        cost_center="CC-2210",
        owner="tom.okafor@acme.example",
        repository="https://github.com/acme-ml/avm-house-price",
        image=SKLEARN,
        image_tag="1.2-1-cpu-py3",
        task="REGRESSION",
        content_type="text/csv",
        instance_types=("ml.m5.large",),
        holdout_rows=21870,
        target="sale_price_keur",
        target_std=118.0,
        algorithm="scikit-learn HistGradientBoostingRegressor",
        objective=("Minimize", "RMSE", "squared_error"),
        hyper_parameters=(("max_iter", "800"), ("learning_rate", "0.04"), ("max_leaf_nodes", "63")),
        purpose="Estimate the market value of residential properties for collateral checks.",
        intended_uses="Second opinion next to a surveyor valuation; flags large gaps for review.",
        factors="Sparse data in rural postcodes; new-build premiums; fast-moving local markets.",
        risk_explanation="Advisory only: a surveyor valuation is always required.",
        business_problem="Catch over-valued collateral before mortgage completion.",
        stakeholders="Mortgage underwriting, collateral management",
        line_of_business="Mortgages",
        ethics="Location features can proxy for protected groups; errors are reviewed by region.",
        caveats="Do not use outside the training countries; refresh monthly with Land Registry data.",
        versions=(
            VersionSpec(
                APPROVED,
                "First AVM: 42 features from listings, Land Registry and EPC data.",
                0.842,
                "Approved: R² 0.842, median absolute error 8.1%.",
                ticket="MLGOV-0988",
            ),
            VersionSpec(
                REJECTED,
                "Adds school-catchment features; evaluated on the Q4 spot-check sample.",
                0.861,
                "Rejected: evaluated on only 180 properties, so no standard deviations; re-run on the full holdout.",
                holdout_rows=180,
                ticket="MLGOV-1051",
                registrant="tom-okafor",
            ),
            VersionSpec(
                APPROVED,
                "School-catchment features, re-evaluated on the full 2024 holdout.",
                0.874,
                "Approved: R² 0.874 on the full holdout.",
                ticket="MLGOV-1094",
            ),
            VersionSpec(
                PENDING,
                "Monthly refresh with 2025-02 transactions; energy-rating interaction terms.",
                0.881,
                card="house-price-regressor-v4",
                ticket="MLGOV-1249",
                hours_ago=20,
            ),
        ),
    ),
    GroupSpec(
        name="churn-propensity",
        second_region=False,
        problem=BINARY,
        description=(
            "Propensity of current-account customers to close their account within 90 days. "
            "Drives retention offers in the CRM."
        ),
        team="customer-analytics",
        risk_tier="Medium",
        cost_center="CC-3305",
        owner="lena.fischer@acme.example",
        repository="https://github.com/acme-ml/churn-propensity",
        image=XGB,
        image_tag="1.7-1",
        task="CLASSIFICATION",
        content_type="text/csv",
        instance_types=("ml.m5.large",),
        holdout_rows=38400,
        target="closed_90d",
        positive_rate=0.14,
        operating_fpr=0.2,
        algorithm="XGBoost gradient-boosted trees (binary:logistic)",
        hyper_parameters=(("max_depth", "5"), ("eta", "0.1"), ("num_round", "300")),
        purpose="Rank current-account customers by their risk of closing the account in 90 days.",
        intended_uses="Targeting retention offers; not for pricing or credit decisions.",
        factors="Seasonality around salary dates; competitor switching campaigns.",
        risk_explanation="Affects which customers receive offers; no adverse decisions.",
        business_problem="Reduce voluntary account closures.",
        stakeholders="Retail marketing, CRM",
        line_of_business="Retail banking",
        ethics="Offers must not be withheld on the basis of protected attributes.",
        caveats="Scores decay after 30 days; re-score weekly.",
        versions=(
            VersionSpec(
                APPROVED,
                "Initial model from a SageMaker Studio notebook.",
                0.742,
                "Approved for the pilot campaign.",
                missing_keys=("RequirementsHash",),
                ticket="MLGOV-0901",
            ),
            VersionSpec(
                APPROVED,
                "Moved to the training pipeline; adds transaction-velocity features.",
                0.768,
                "Approved: AUC 0.768, uplift test +3.1% retention.",
                missing_keys=("RequirementsHash",),
                ticket="MLGOV-0964",
            ),
            VersionSpec(
                REJECTED,
                "Adds app-engagement features (evaluation step interrupted).",
                0.771,
                "Rejected: evaluation report is unreadable (the evaluation step was interrupted). MLGOV-1120.",
                report=REPORT_BROKEN,
                ticket="MLGOV-1120",
            ),
            VersionSpec(
                PENDING,
                "Re-run of v3 with the evaluation step fixed.",
                0.779,
                ticket="MLGOV-1131",
                hours_ago=216,
            ),
            VersionSpec(
                PENDING,
                "Retrain on data to 2025-02; complaint-text sentiment feature (registered from a Studio notebook).",
                0.785,
                ticket="MLGOV-1240",
                hours_ago=60,
                registrant="mlead",
            ),
        ),
    ),
    GroupSpec(
        name="fraud-detector",
        second_region=False,
        problem=BINARY,
        description=(
            "Real-time card-not-present fraud scoring for e-commerce payments (p99 latency budget 40 ms). "
            "Clarify bias reports are required on every version."
        ),
        team="payments-risk",
        risk_tier="High",
        cost_center="CC-4410",
        owner="arjun.mehta@acme.example",
        repository="https://github.com/acme-ml/fraud-detector",
        image=XGB,
        image_tag="1.7-1",
        task="CLASSIFICATION",
        content_type="application/json",
        instance_types=("ml.c5.xlarge", "ml.c5.2xlarge"),
        holdout_rows=250000,
        target="is_fraud",
        positive_rate=0.009,
        operating_fpr=0.02,
        bias=True,
        algorithm="XGBoost gradient-boosted trees (binary:logistic)",
        objective=("Maximize", "AUC", "aucpr"),
        hyper_parameters=(("max_depth", "8"), ("eta", "0.08"), ("num_round", "900"), ("scale_pos_weight", "60")),
        purpose="Score card-not-present payments for fraud risk in real time.",
        intended_uses="Step-up authentication and manual review queueing. Not for closing accounts.",
        factors="Fraud patterns shift within weeks; merchant mix; holiday peaks.",
        risk_explanation="Declines and step-ups affect customers directly; errors cost money and trust.",
        business_problem="Cut fraud losses without raising false declines.",
        stakeholders="Payments risk, fraud operations, customer service",
        line_of_business="Cards and payments",
        ethics="Disparate impact by age band and card-present history is checked with Clarify on every version.",
        caveats="Champion/challenger rollout only; monitor the false-positive rate daily.",
        versions=(
            VersionSpec(
                APPROVED,
                "Baseline XGBoost on 2024-H1 authorisations.",
                0.931,
                "Approved: AUC 0.931; DI 0.91 within the 0.8-1.25 band.",
                disparate_impact=0.91,
                ticket="MLGOV-1010",
            ),
            VersionSpec(
                REJECTED,
                "Adds device-fingerprint age features.",
                0.944,
                "Rejected by fairness review: DI 0.72 for age band 18-24 fails the four-fifths rule. MLGOV-1099.",
                disparate_impact=0.72,
                ticket="MLGOV-1099",
            ),
            VersionSpec(
                APPROVED,
                "v2 without raw device age; monotone constraint on account tenure.",
                0.948,
                "Approved: AUC 0.948; DI 0.89; champion on fraud-detector-live.",
                disparate_impact=0.89,
                card="fraud-detector-v3",
                ticket="MLGOV-1142",
            ),
            VersionSpec(
                APPROVED,
                "Retrain on data to 2025-01; merchant-category embeddings.",
                0.953,
                "Approved for a 10% challenger rollout on fraud-detector-live.",
                disparate_impact=0.9,
                card="fraud-detector-v3",
                ticket="MLGOV-1203",
            ),
            VersionSpec(
                PENDING,
                "Retrain on data to 2025-03 (training data snapshot not versioned).",
                0.957,
                missing_keys=("TrainingDataS3VersionId",),
                disparate_impact=0.87,
                explainability=True,
                card="fraud-detector-v5",
                ticket="MLGOV-1266",
                hours_ago=40,
            ),
        ),
    ),
    GroupSpec(
        name="support-ticket-router",
        second_region=False,
        problem=MULTICLASS,
        description=(
            "Routes inbound customer-support emails to one of five queues (fine-tuned DistilBERT). "
            "Misroutes add about a day to resolution time."
        ),
        team="customer-support-ml",
        risk_tier="Low",
        cost_center="CC-5120",
        owner="sofia.rossi@acme.example",
        repository="https://github.com/acme-ml/ticket-router",
        image=HF,
        image_tag="2.1.0-transformers4.37.0-cpu-py310-ubuntu22.04",
        task="CLASSIFICATION",
        content_type="application/json",
        instance_types=("ml.m5.xlarge", "ml.g4dn.xlarge"),
        holdout_rows=12600,
        target="queue",
        classes=("account", "billing", "cards", "fraud-report", "technical"),
        algorithm="DistilBERT (distilbert-base-multilingual-cased) fine-tuned for sequence classification",
        objective=("Minimize", "Loss", "cross_entropy"),
        hyper_parameters=(("epochs", "3"), ("learning_rate", "3e-5"), ("max_seq_length", "256")),
        purpose="Route customer-support emails to the right queue.",
        intended_uses="Queue routing with agent override; not for replies or customer-facing decisions.",
        factors="New products create unseen topics; multilingual emails.",
        risk_explanation="Misroutes only delay handling; agents can re-route.",
        business_problem="Shorten time to first response.",
        stakeholders="Customer support operations",
        line_of_business="Customer service",
        ethics="Emails contain personal data: the model is hosted in the EU region only.",
        caveats="Fraud reports must never be routed below priority; a rule overrides the model.",
        versions=(
            VersionSpec(
                APPROVED,
                "Fine-tuned in a notebook on 2024-H1 tickets.",
                0.842,
                "Approved for production routing with agent override.",
                missing_keys=("GitCommitSha", "RequirementsHash"),
                ticket="MLGOV-0977",
                registrant="sofia-rossi",
            ),
            VersionSpec(
                REJECTED,
                "Adds the 'cards' queue split (evaluation output missing).",
                0.86,
                "Rejected: the evaluation report was never written (processing job failed). MLGOV-1066.",
                report=REPORT_MISSING,
                ticket="MLGOV-1066",
            ),
            VersionSpec(
                APPROVED,
                "Re-run of v2 through the pipeline with evaluation.",
                0.871,
                "Approved: accuracy 0.871, fraud-report recall 0.96.",
                ticket="MLGOV-1083",
            ),
            VersionSpec(
                PENDING,
                "Multilingual base model; adds Polish and Portuguese training data.",
                0.889,
                ticket="MLGOV-1251",
                hours_ago=80,
            ),
        ),
    ),
    GroupSpec(
        name="demand-forecast",
        second_region=True,
        problem=REGRESSION,
        description=(
            "Daily unit demand per store and SKU, 14 days ahead (DeepAR-style PyTorch model). "
            "Feeds replenishment orders for the US retail partner programme."
        ),
        team="supply-chain-ds",
        risk_tier="Medium",
        cost_center="CC-6100",
        owner="james.carter@acme.example",
        repository="https://github.com/acme-ml/demand-forecast",
        image=TORCH,
        image_tag="2.1.0-cpu-py310-ubuntu20.04-sagemaker",
        task="REGRESSION",
        content_type="application/json",
        instance_types=("ml.m5.2xlarge",),
        holdout_rows=92000,
        target="units_sold",
        target_std=21.5,
        algorithm="PyTorch DeepAR-style autoregressive RNN",
        objective=("Minimize", "Loss", "negative_binomial_nll"),
        hyper_parameters=(("context_length", "56"), ("prediction_length", "14"), ("epochs", "40")),
        purpose="Forecast daily unit demand per store and SKU for replenishment.",
        intended_uses="Replenishment order proposals reviewed by planners.",
        factors="Promotions, weather, holidays and supply shortages.",
        risk_explanation="Over-forecasts tie up stock; under-forecasts cause stock-outs.",
        business_problem="Reduce stock-outs and write-offs.",
        stakeholders="Supply chain planning, store operations",
        line_of_business="Retail partnerships",
        ethics="No personal data is used.",
        caveats="Retrain after large promotions; not valid for newly opened stores in their first 8 weeks.",
        versions=(
            VersionSpec(
                APPROVED,
                "First pipeline run (abalone-style evaluation step: MSE only).",
                0.71,
                "Approved for the pilot in 40 stores.",
                report=REPORT_PIPELINES,
                missing_keys=("ContainerImageDigest",),
                image_tag="2.0.1-cpu-py310-ubuntu20.04-sagemaker",
                ticket="MLGOV-1002",
            ),
            VersionSpec(
                REJECTED,
                "Adds weather covariates (sparse station coverage).",
                0.69,
                "Rejected: worse than v1 on the holdout (R² 0.69 vs 0.71).",
                ticket="MLGOV-1071",
            ),
            VersionSpec(
                APPROVED,
                "Promotion calendar covariates; 2 years of history.",
                0.76,
                "Approved: R² 0.76; deployed to demand-forecast-prod.",
                ticket="MLGOV-1160",
            ),
            VersionSpec(
                PENDING,
                "Retrain with 2025-Q1 data and holiday features.",
                0.78,
                card="demand-forecast-v4",
                ticket="MLGOV-1258",
                hours_ago=26,
            ),
        ),
    ),
)

CARDS: tuple[CardSpec, ...] = (
    CardSpec("credit-default-xgb-v5", "credit-default-xgb", 5, "Approved"),
    CardSpec("credit-default-xgb-v6", "credit-default-xgb", 6, "PendingReview"),
    CardSpec("house-price-regressor-v4", "house-price-regressor", 4, "Draft"),
    CardSpec("fraud-detector-v3", "fraud-detector", 3, "Approved"),
    CardSpec("fraud-detector-v5", "fraud-detector", 5, "Draft"),
    CardSpec("demand-forecast-v4", "demand-forecast", 4, "PendingReview"),
)

ENDPOINTS: tuple[EndpointSpec, ...] = (
    EndpointSpec("credit-default-prod", False, (("AllTraffic", "credit-default-xgb", 5, 1.0),), "ml.m5.xlarge", 2),
    EndpointSpec(
        "fraud-detector-live",
        False,
        (("Champion", "fraud-detector", 3, 0.9), ("Challenger", "fraud-detector", 4, 0.1)),
        "ml.c5.xlarge",
        2,
    ),
    EndpointSpec("demand-forecast-prod", True, (("AllTraffic", "demand-forecast", 3, 1.0),), "ml.m5.2xlarge", 1),
)


# --------------------------------------------------------------------------------------------- summary


@dataclass
class SeedSummary:
    """What the seed created (or, when ``skipped``, what an earlier run created)."""

    account_id: str
    regions: tuple[str, ...]
    buckets: tuple[str, ...]
    groups: dict[str, list[str]] = field(default_factory=dict)  # region -> group names
    packages: dict[str, list[str]] = field(default_factory=dict)  # group -> package ARNs, version order
    packages_by_status: dict[str, int] = field(default_factory=dict)
    reports: list[str] = field(default_factory=list)  # S3 URIs of readable reports
    broken_reports: list[str] = field(default_factory=list)  # uploaded, but not valid JSON
    missing_reports: list[str] = field(default_factory=list)  # referenced, never uploaded
    cards: dict[str, str] = field(default_factory=dict)  # card name -> status
    endpoints: dict[str, list[str]] = field(default_factory=dict)  # endpoint -> served package ARNs
    missing_reproducibility: dict[str, list[str]] = field(default_factory=dict)  # package ARN -> missing keys
    cloudtrail_bucket: str = ""
    cloudtrail_files: int = 0
    cloudtrail_events: int = 0  # records written, noise included
    deployment_steps: dict[str, int] = field(default_factory=dict)  # endpoint -> CreateEndpoint/UpdateEndpoint calls
    provenance: list[str] = field(default_factory=list)  # demo_provenance's summary lines
    created_at: dict[str, dt.datetime] = field(default_factory=dict)  # package ARN -> backdated CreationTime
    skipped: bool = False

    @property
    def package_count(self) -> int:
        return sum(len(arns) for arns in self.packages.values())

    def lines(self) -> list[str]:
        head = "Registry already seeded: nothing created." if self.skipped else "Seeded the demo registry."
        statuses = ", ".join(f"{status} {count}" for status, count in sorted(self.packages_by_status.items()))
        out = [
            head,
            f"  account {self.account_id}; regions {', '.join(self.regions)}; buckets {', '.join(self.buckets)}",
        ]
        for region, names in self.groups.items():
            out.append(f"  {region}: {len(names)} groups: {', '.join(names)}")
        out += [
            f"  packages: {self.package_count} ({statuses})",
            f"  reports: {len(self.reports)} readable, {len(self.broken_reports)} invalid JSON, "
            f"{len(self.missing_reports)} missing object",
        ]
        out += [f"    invalid: {uri}" for uri in self.broken_reports]
        out += [f"    missing: {uri}" for uri in self.missing_reports]
        out.append(f"  packages missing reproducibility keys: {len(self.missing_reproducibility)}")
        cards = ", ".join(f"{name} ({status})" for name, status in self.cards.items())
        out.append(f"  model cards: {len(self.cards)}: {cards}")
        for name, arns in self.endpoints.items():
            served = ", ".join("/".join(arn.rsplit("/", 2)[-2:]) for arn in arns)
            out.append(f"  endpoint {name} -> {served}")
        out += self.provenance
        if self.cloudtrail_bucket:
            steps = ", ".join(f"{name} {n}" for name, n in self.deployment_steps.items())
            out.append(
                f"  cloudtrail: {self.cloudtrail_events} records in {self.cloudtrail_files} log files in "
                f"s3://{self.cloudtrail_bucket}/AWSLogs/{self.account_id}/CloudTrail/ (last {CLOUDTRAIL_DAYS} days);"
                f" deployments: {steps}"
            )
        return out


# --------------------------------------------------------------------------------------------- helpers


def _hex(*parts: object, length: int = 64) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:length]


def _s3_version_id(rng: random.Random) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._"
    return "".join(rng.choice(alphabet) for _ in range(32))


def _r(value: float, digits: int = 6) -> float:
    return round(float(value), digits)


def _metric(value: float, std: float | str) -> dict[str, Any]:
    return {"value": _r(value), "standard_deviation": std if isinstance(std, str) else _r(std)}


def _std(rng: random.Random, rows: int, low: float, high: float) -> float | str:
    """Model Monitor only reports a standard deviation with at least 200 samples; otherwise "NaN"."""
    return "NaN" if rows < 200 else rng.uniform(low, high)


def _f_beta(precision: float, recall: float, beta: float) -> float:
    b2 = beta * beta
    denominator = b2 * precision + recall
    return (1 + b2) * precision * recall / denominator if denominator else 0.0


# --------------------------------------------------------------------------------------------- reports


def binary_classification_report(
    rng: random.Random, *, auc: float, rows: int, positive_rate: float, operating_fpr: float
) -> dict[str, Any]:
    """Model Monitor ``binary_classification_metrics`` for a binormal score model with the given AUC."""
    normal = NormalDist()
    separation = math.sqrt(2) * normal.inv_cdf(auc)  # equal-variance binormal ROC: AUC = Φ(d/√2)

    def tpr_at(fpr: float) -> float:
        if fpr <= 0:
            return 0.0
        if fpr >= 1:
            return 1.0
        return 1 - normal.cdf(normal.inv_cdf(1 - fpr) - separation)

    positives = max(1, round(rows * positive_rate))
    negatives = rows - positives
    fprs = [0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    tprs = [tpr_at(f) for f in fprs]
    recalls = [0.0] + tprs[1:]
    precisions = [1.0] + [
        (t * positives) / (t * positives + f * negatives) if (t * positives + f * negatives) else 1.0
        for f, t in zip(fprs[1:], tprs[1:], strict=True)
    ]
    tp = round(tpr_at(operating_fpr) * positives)
    fp = round(operating_fpr * negatives)
    fn, tn = positives - tp, negatives - fp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / positives
    accuracy = (tp + tn) / rows
    prevalence = positives / rows

    def s(low: float, high: float) -> float | str:
        return _std(rng, rows, low, high)

    return {
        "binary_classification_metrics": {
            "accuracy": _metric(accuracy, s(0.0005, 0.003)),
            "accuracy_best_constant_classifier": _metric(max(prevalence, 1 - prevalence), s(0.0005, 0.002)),
            "auc": _metric(auc, s(0.001, 0.006)),
            "confusion_matrix": {"0": {"0": tn, "1": fp}, "1": {"0": fn, "1": tp}},
            "f0_5": _metric(_f_beta(precision, recall, 0.5), s(0.002, 0.01)),
            "f0_5_best_constant_classifier": _metric(_f_beta(prevalence, 1.0, 0.5), s(0.0005, 0.002)),
            "f1": _metric(_f_beta(precision, recall, 1.0), s(0.002, 0.01)),
            "f1_best_constant_classifier": _metric(_f_beta(prevalence, 1.0, 1.0), s(0.0005, 0.002)),
            "f2": _metric(_f_beta(precision, recall, 2.0), s(0.002, 0.01)),
            "f2_best_constant_classifier": _metric(_f_beta(prevalence, 1.0, 2.0), s(0.0005, 0.002)),
            "false_negative_rate": _metric(fn / positives, s(0.002, 0.01)),
            "false_positive_rate": _metric(fp / negatives, s(0.0005, 0.003)),
            "precision": _metric(precision, s(0.002, 0.01)),
            "precision_best_constant_classifier": _metric(prevalence, s(0.0005, 0.002)),
            "precision_recall_curve": {
                "precisions": [_r(p, 4) for p in precisions],
                "recalls": [_r(r, 4) for r in recalls],
            },
            "recall": _metric(recall, s(0.002, 0.01)),
            "recall_best_constant_classifier": _metric(1.0, s(0.0, 0.0)),
            "receiver_operating_characteristic_curve": {
                "false_positive_rates": [_r(f, 4) for f in fprs],
                "true_positive_rates": [_r(t, 4) for t in tprs],
            },
            "true_negative_rate": _metric(tn / negatives, s(0.0005, 0.003)),
            "true_positive_rate": _metric(recall, s(0.002, 0.01)),
        }
    }


def regression_report(rng: random.Random, *, r2: float, rows: int, target_std: float) -> dict[str, Any]:
    """Model Monitor ``regression_metrics`` (mae, mse, rmse, r2) consistent with the given R²."""
    mse = (1 - r2) * target_std * target_std
    rmse = math.sqrt(mse)
    mae = rmse * rng.uniform(0.74, 0.8)  # heavy-ish tailed residuals: MAE ≈ 0.75-0.8 × RMSE
    return {
        "regression_metrics": {
            "mae": _metric(mae, _std(rng, rows, 0.004 * mae, 0.012 * mae)),
            "mse": _metric(mse, _std(rng, rows, 0.01 * mse, 0.03 * mse)),
            "rmse": _metric(rmse, _std(rng, rows, 0.005 * rmse, 0.015 * rmse)),
            "r2": _metric(r2, _std(rng, rows, 0.001, 0.006)),
        }
    }


def pipelines_evaluation_report(rng: random.Random, *, r2: float, target_std: float) -> dict[str, Any]:
    """The SageMaker Pipelines abalone example's evaluation.json: ``regression_metrics.mse`` only."""
    mse = (1 - r2) * target_std * target_std
    return {
        "regression_metrics": {
            "mse": {"value": _r(mse), "standard_deviation": _r(math.sqrt(mse) * rng.uniform(0.9, 1.1))}
        }
    }


def multiclass_report(rng: random.Random, *, accuracy: float, rows: int, classes: tuple[str, ...]) -> dict[str, Any]:
    """Model Monitor ``multiclass_classification_metrics`` from a generated confusion matrix."""
    shares = [rng.uniform(0.6, 1.6) for _ in classes]
    total_share = sum(shares)
    support = [max(20, round(rows * share / total_share)) for share in shares]
    matrix: dict[str, dict[str, int]] = {}
    for label, n in zip(classes, support, strict=True):
        recall = min(0.995, max(0.3, accuracy + rng.uniform(-0.06, 0.06)))
        correct = round(n * recall)
        wrong = n - correct
        others = [c for c in classes if c != label]
        weights = [rng.uniform(0.2, 1.0) for _ in others]
        row = {c: 0 for c in classes}
        row[label] = correct
        allotted = 0
        for other_index, (other, weight) in enumerate(zip(others, weights, strict=True)):
            share = wrong - allotted if other_index == len(others) - 1 else round(wrong * weight / sum(weights))
            share = max(0, min(share, wrong - allotted))
            row[other] = share
            allotted += share
        matrix[label] = row
    total = sum(support)
    predicted = {c: sum(matrix[a][c] for a in classes) for c in classes}
    correct_total = sum(matrix[c][c] for c in classes)
    per_class = []
    for label, n in zip(classes, support, strict=True):
        tp = matrix[label][label]
        precision = tp / predicted[label] if predicted[label] else 0.0
        per_class.append((n / total, precision, tp / n))

    def weighted(beta: float | None, which: str = "") -> float:
        if which == "precision":
            return sum(w * p for w, p, _ in per_class)
        if which == "recall":
            return sum(w * r for w, _, r in per_class)
        return sum(w * _f_beta(p, r, beta or 1.0) for w, p, r in per_class)

    majority = max(support) / total

    def s(low: float, high: float) -> float | str:
        return _std(rng, rows, low, high)

    return {
        "multiclass_classification_metrics": {
            "confusion_matrix": matrix,
            "accuracy": _metric(correct_total / total, s(0.002, 0.006)),
            "weighted_recall": _metric(weighted(None, "recall"), s(0.002, 0.006)),
            "weighted_precision": _metric(weighted(None, "precision"), s(0.002, 0.007)),
            "weighted_f0_5": _metric(weighted(0.5), s(0.002, 0.007)),
            "weighted_f1": _metric(weighted(1.0), s(0.002, 0.007)),
            "weighted_f2": _metric(weighted(2.0), s(0.002, 0.007)),
            "accuracy_best_constant_classifier": _metric(majority, s(0.001, 0.004)),
            "weighted_recall_best_constant_classifier": _metric(majority, s(0.001, 0.004)),
            "weighted_precision_best_constant_classifier": _metric(majority * majority, s(0.001, 0.004)),
            "weighted_f0_5_best_constant_classifier": _metric(majority * _f_beta(majority, 1.0, 0.5), s(0.001, 0.004)),
            "weighted_f1_best_constant_classifier": _metric(majority * _f_beta(majority, 1.0, 1.0), s(0.001, 0.004)),
            "weighted_f2_best_constant_classifier": _metric(majority * _f_beta(majority, 1.0, 2.0), s(0.001, 0.004)),
        }
    }


_BIAS_DESCRIPTIONS = {
    "CI": "Class Imbalance (CI)",
    "DPL": "Difference in Positive Proportions in Labels (DPL)",
    "KL": "Kullback-Liebler Divergence (KL)",  # sic: Clarify's own spelling
    "JS": "Jensen-Shannon Divergence (JS)",
    "DPPL": "Difference in Positive Proportions in Predicted Labels (DPPL)",
    "DI": "Disparate Impact (DI)",
    "AD": "Accuracy Difference (AD)",
    "RD": "Recall Difference (RD)",
}


def _bias_metric(name: str, value: float) -> dict[str, Any]:
    return {"description": _BIAS_DESCRIPTIONS[name], "name": name, "value": _r(value, 12)}


def clarify_bias_report(rng: random.Random, *, label: str, disparate_impact: float) -> dict[str, Any]:
    """Clarify ``analysis.json`` with pre- and post-training bias metrics for two facets."""
    facets = (("customer_age_band", ("18-24", 0.11)), ("card_present_history", ("0", 0.23)))
    pre: dict[str, list[dict[str, Any]]] = {}
    post: dict[str, list[dict[str, Any]]] = {}
    for facet, (value, share) in facets:
        ci = 1 - 2 * share + rng.uniform(-0.01, 0.01)
        dpl = rng.uniform(-0.004, 0.004)
        pre[facet] = [
            {
                "value_or_threshold": value,
                "metrics": [
                    _bias_metric("CI", ci),
                    _bias_metric("DPL", dpl),
                    _bias_metric("KL", abs(dpl) * rng.uniform(0.5, 2.0)),
                    _bias_metric("JS", abs(dpl) * rng.uniform(0.1, 0.5)),
                ],
            }
        ]
        # DI = q_d / q_a (predicted positive rates); DPPL = q_a - q_d. The age facet carries the configured DI.
        di = disparate_impact if facet == "customer_age_band" else min(1.1, disparate_impact + rng.uniform(0.04, 0.1))
        base_rate = 0.021
        post[facet] = [
            {
                "value_or_threshold": value,
                "metrics": [
                    _bias_metric("DPPL", base_rate - base_rate * di),
                    _bias_metric("DI", di),
                    _bias_metric("AD", rng.uniform(-0.012, 0.006)),
                    _bias_metric("RD", rng.uniform(-0.05, 0.03)),
                ],
            }
        ]
    return {
        "post_training_bias_metrics": {"facets": post, "label": label, "label_value_or_threshold": "1"},
        "pre_training_bias_metrics": {"facets": pre, "label": label, "label_value_or_threshold": "1"},
        "version": "1.0",
    }


def clarify_explainability_report(rng: random.Random) -> dict[str, Any]:
    features = (
        "amount_zscore_30d",
        "merchant_category_risk",
        "device_seen_days",
        "ip_country_mismatch",
        "txn_velocity_1h",
        "account_tenure_months",
        "billing_shipping_distance_km",
    )
    weights = sorted((rng.uniform(0.002, 0.05) for _ in features), reverse=True)
    return {
        "explanations": {
            "kernel_shap": {
                "label0": {
                    "global_shap_values": {f: _r(w, 12) for f, w in zip(features, weights, strict=True)},
                    "expected_value": 0.0091,
                }
            }
        },
        "version": "1.0",
    }


# --------------------------------------------------------------------------------------------- model cards


def _headline(group: GroupSpec, report: dict[str, Any] | None) -> list[tuple[str, float]]:
    if not report:
        return []
    section = next(iter(report.values()))
    names = {
        BINARY: ("auc", "accuracy", "precision", "recall", "f1"),
        REGRESSION: ("r2", "rmse", "mae", "mse"),
        MULTICLASS: ("accuracy", "weighted_precision", "weighted_recall", "weighted_f1"),
    }[group.problem]
    return [(n, section[n]["value"]) for n in names if isinstance(section.get(n), dict)]


def package_card_content(
    group: GroupSpec, spec: VersionSpec, model_data_url: str, metrics: list[tuple[str, float]]
) -> dict[str, Any]:
    """Embedded model-package card (package schema: model_overview has only creator and artifact)."""
    content: dict[str, Any] = {
        "model_overview": {"model_creator": group.team, "model_artifact": [model_data_url]},
        "intended_uses": {
            "purpose_of_model": group.purpose,
            "intended_uses": group.intended_uses,
            "factors_affecting_model_efficiency": group.factors,
            "risk_rating": group.risk_tier,
            "explanations_for_risk_rating": group.risk_explanation,
        },
        "business_details": {
            "business_problem": group.business_problem,
            "business_stakeholders": group.stakeholders,
            "line_of_business": group.line_of_business,
        },
        "additional_information": {
            "ethical_considerations": group.ethics,
            "caveats_and_recommendations": group.caveats,
            "custom_details": {"cost_center": group.cost_center, "ticket": spec.ticket},
        },
    }
    if metrics:
        content["evaluation_details"] = [
            {
                "name": "holdout",
                "evaluation_observation": spec.description[:2000],
                "metric_groups": [
                    {
                        "name": f"{group.problem}_metrics",
                        "metric_data": [{"name": n, "type": "number", "value": v} for n, v in metrics],
                    }
                ],
            }
        ]
    return content


def standalone_card_content(
    group: GroupSpec,
    version: int,
    spec: VersionSpec,
    *,
    region: str,
    account: str,
    package_arn: str,
    image: str,
    model_data_url: str,
    report: dict[str, Any] | None,
    report_uri: str,
    training_dataset: str,
) -> dict[str, Any]:
    """A standalone model card (2023 schema + business_details + model_package_details)."""
    arn_prefix = f"arn:aws:sagemaker:{region}:{account}"
    training_job = f"{arn_prefix}:training-job/{group.name}-v{version}-{_hex(group.name, version, length=8)}"
    metric_data: list[dict[str, Any]] = [
        {"name": name, "type": "number", "value": value} for name, value in _headline(group, report)
    ]
    section = next(iter(report.values())) if report else {}
    if group.problem == BINARY and section:
        cm = section["confusion_matrix"]
        metric_data.append(
            {
                "name": "confusion_matrix",
                "type": "matrix",
                "value": [[cm["0"]["0"], cm["0"]["1"]], [cm["1"]["0"], cm["1"]["1"]]],
                "x_axis_name": ["0", "1"],
                "y_axis_name": ["0", "1"],
                "notes": "Rows: actual class; columns: predicted class.",
            }
        )
        roc = section["receiver_operating_characteristic_curve"]
        metric_data.append(
            {
                "name": "roc_curve",
                "type": "linear_graph",
                "value": [[x, y] for x, y in zip(roc["false_positive_rates"], roc["true_positive_rates"], strict=True)],
                "x_axis_name": "false positive rate",
                "y_axis_name": "true positive rate",
            }
        )
    elif group.problem == MULTICLASS and section:
        cm = section["confusion_matrix"]
        labels = list(cm)
        metric_data.append(
            {
                "name": "confusion_matrix",
                "type": "matrix",
                "value": [[cm[a][p] for p in labels] for a in labels],
                "x_axis_name": labels,
                "y_axis_name": labels,
            }
        )
    training_metric = {BINARY: "validation:auc", REGRESSION: "validation:rmse", MULTICLASS: "eval_accuracy"}[
        group.problem
    ]
    training_value = (
        spec.quality + 0.004
        if group.problem != REGRESSION
        else round(group.target_std * math.sqrt(1 - spec.quality), 4)
    )
    content: dict[str, Any] = {
        "model_overview": {
            "model_description": f"{group.description} Version {version}: {spec.description}",
            "model_owner": group.owner,
            "model_creator": group.team,
            "problem_type": {
                BINARY: "Binary Classification",
                REGRESSION: "Regression",
                MULTICLASS: "Multiclass Classification",
            }[group.problem],
            "algorithm_type": group.algorithm,
            "model_id": package_arn,
            "model_name": group.name,
            "model_version": version,
            "model_artifact": [model_data_url],
            "inference_environment": {"container_image": [image]},
        },
        "intended_uses": {
            "purpose_of_model": group.purpose,
            "intended_uses": group.intended_uses,
            "factors_affecting_model_efficiency": group.factors,
            "risk_rating": group.risk_tier,
            "explanations_for_risk_rating": group.risk_explanation,
        },
        "business_details": {
            "business_problem": group.business_problem,
            "business_stakeholders": group.stakeholders,
            "line_of_business": group.line_of_business,
        },
        "training_details": {
            "objective_function": {
                "function": {
                    "function": group.objective[0],
                    "facet": group.objective[1],
                    "condition": group.objective[2],
                },
                "notes": f"Target: {group.target}.",
            },
            "training_observations": spec.description,
            "training_job_details": {
                "training_arn": training_job,
                "training_datasets": [training_dataset],
                "training_environment": {"container_image": [image]},
                "training_metrics": [{"name": training_metric, "value": round(training_value, 4)}],
                "hyper_parameters": [{"name": n, "value": v} for n, v in group.hyper_parameters],
            },
        },
        "evaluation_details": [
            {
                "name": f"holdout-v{version}",
                "evaluation_observation": spec.approval_note or "Awaiting review.",
                "evaluation_job_arn": f"{arn_prefix}:processing-job/{group.name}-eval-v{version}",
                "datasets": [report_uri],
                "metadata": {"holdout_rows": str(spec.holdout_rows or group.holdout_rows), "source": "pipeline"},
                "metric_groups": [{"name": f"{group.problem}_metrics", "metric_data": metric_data}]
                if metric_data
                else [],
            }
        ],
        "additional_information": {
            "ethical_considerations": group.ethics,
            "caveats_and_recommendations": group.caveats,
            "custom_details": {"cost_center": group.cost_center, "ticket": spec.ticket, "risk_tier": group.risk_tier},
        },
        "model_package_details": {
            "model_package_arn": package_arn,
            "model_package_name": f"{group.name}/{version}",
            "model_package_group_name": group.name,
            "model_package_version": version,
            "model_package_description": spec.description,
            "inference_specification": {"containers": [{"image": image, "model_data_url": model_data_url}]},
            "model_package_status": "Completed",
            "model_approval_status": spec.status,
            "approval_description": spec.approval_note,
            "created_by": {"user_profile_name": group.owner.split("@", 1)[0].replace(".", "-")},
            "domain": "MACHINE_LEARNING",
            "task": group.task,
        },
    }
    if not spec.approval_note:
        del content["model_package_details"]["approval_description"]
    return content


# --------------------------------------------------------------------------------------------- AWS calls


def _config() -> Config:
    return Config(retries={"mode": "standard", "total_max_attempts": 5}, connect_timeout=5, read_timeout=30)


def _clients(region: str) -> tuple[Any, Any]:
    session = boto3.Session(region_name=region)
    return session.client("sagemaker", config=_config()), session.client("s3", config=_config())


def _group_exists(sm: Any, name: str) -> bool:
    try:
        sm.describe_model_package_group(ModelPackageGroupName=name)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in {"ValidationException", "ResourceNotFound", "ResourceNotFoundException"}:
            return False
        raise
    return True


def _ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
            raise
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def _put(s3: Any, bucket: str, key: str, body: bytes) -> str:
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=JSON)
    return f"s3://{bucket}/{key}"


def _dumps(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2).encode()


@dataclass
class _Context:
    rng: random.Random
    account: str
    regions: dict[bool, str]  # second_region flag -> region
    buckets: dict[bool, str]
    summary: SeedSummary
    arns: dict[tuple[str, int], str] = field(default_factory=dict)
    images: dict[tuple[str, int], str] = field(default_factory=dict)
    model_urls: dict[tuple[str, int], str] = field(default_factory=dict)
    quality_reports: dict[tuple[str, int], tuple[dict[str, Any] | None, str]] = field(default_factory=dict)
    datasets: dict[tuple[str, int], str] = field(default_factory=dict)


def _version_reports(ctx: _Context, s3: Any, group: GroupSpec, version: int, spec: VersionSpec) -> dict[str, Any]:
    """Upload this version's reports; return its ModelMetrics."""
    bucket = ctx.buckets[group.second_region]
    prefix = f"{group.name}/{version}"
    rows = spec.holdout_rows or group.holdout_rows
    report: dict[str, Any]
    if group.problem == BINARY:
        report = binary_classification_report(
            ctx.rng, auc=spec.quality, rows=rows, positive_rate=group.positive_rate, operating_fpr=group.operating_fpr
        )
    elif group.problem == MULTICLASS:
        report = multiclass_report(ctx.rng, accuracy=spec.quality, rows=rows, classes=group.classes)
    elif spec.report == REPORT_PIPELINES:
        report = pipelines_evaluation_report(ctx.rng, r2=spec.quality, target_std=group.target_std)
    else:
        report = regression_report(ctx.rng, r2=spec.quality, rows=rows, target_std=group.target_std)

    key = f"{prefix}/evaluation.json"
    uri = f"s3://{bucket}/{key}"
    if spec.report == REPORT_MISSING:
        ctx.summary.missing_reports.append(uri)
        ctx.quality_reports[(group.name, version)] = (None, uri)
    elif spec.report == REPORT_BROKEN:
        body = _dumps(report)
        _put(s3, bucket, key, body[: int(len(body) * 0.6)])  # the job died mid-write: truncated JSON
        ctx.summary.broken_reports.append(uri)
        ctx.quality_reports[(group.name, version)] = (None, uri)
    else:
        ctx.summary.reports.append(_put(s3, bucket, key, _dumps(report)))
        ctx.quality_reports[(group.name, version)] = (report, uri)

    metrics: dict[str, Any] = {"ModelQuality": {"Statistics": {"ContentType": JSON, "S3Uri": uri}}}
    if group.bias:
        body = _dumps(clarify_bias_report(ctx.rng, label=group.target, disparate_impact=spec.disparate_impact))
        bias_uri = _put(s3, bucket, f"{prefix}/bias/analysis.json", body)
        ctx.summary.reports.append(bias_uri)
        metrics["Bias"] = {
            "Report": {
                "ContentType": JSON,
                "S3Uri": bias_uri,
                "ContentDigest": f"sha256:{hashlib.sha256(body).hexdigest()}",
            }
        }
    if spec.explainability:
        explain_uri = _put(
            s3, bucket, f"{prefix}/explainability/analysis.json", _dumps(clarify_explainability_report(ctx.rng))
        )
        ctx.summary.reports.append(explain_uri)
        metrics["Explainability"] = {"Report": {"ContentType": JSON, "S3Uri": explain_uri}}
    return metrics


def _create_package(ctx: _Context, sm: Any, s3: Any, group: GroupSpec, version: int, spec: VersionSpec) -> str:
    region = ctx.regions[group.second_region]
    bucket = ctx.buckets[group.second_region]
    image = group.image.format(region=region, tag=spec.image_tag or group.image_tag)
    image_digest = f"sha256:{_hex('image', image)}"
    model_data_url = f"s3://{bucket}/{group.name}/{version}/model.tar.gz"
    execution = "".join(ctx.rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
    pipeline_execution = (
        f"arn:aws:sagemaker:{region}:{ctx.account}:pipeline/{group.name}-training/execution/{execution}"
    )
    commit = _hex("commit", group.name, version, length=40)
    dataset = f"s3://acme-ml-data-{region}/{group.name}/train/{version:03d}/"
    ctx.images[(group.name, version)] = image
    ctx.model_urls[(group.name, version)] = model_data_url
    ctx.datasets[(group.name, version)] = dataset

    metadata: dict[str, str] = {
        "TrainingDataS3VersionId": _s3_version_id(ctx.rng),
        "ContainerImageDigest": image_digest,
        "GitCommitSha": commit,
        "RequirementsHash": f"sha256:{_hex('requirements', group.name, version)}",
        "owner": group.owner,
        "ticket": spec.ticket,
        "team": group.team,
        "training_dataset": dataset,
    }
    for key in spec.missing_keys:
        metadata.pop(key)
    if spec.card:
        metadata["ModelCardName"] = spec.card

    model_metrics = _version_reports(ctx, s3, group, version, spec)
    report, _ = ctx.quality_reports[(group.name, version)]
    card_status = "Approved" if spec.status == APPROVED else "Draft"
    arn: str = sm.create_model_package(
        ModelPackageGroupName=group.name,
        ModelPackageDescription=spec.description,
        ModelApprovalStatus=PENDING,  # every version enters review; decisions are applied below
        InferenceSpecification={
            "Containers": [{"Image": image, "ImageDigest": image_digest, "ModelDataUrl": model_data_url}],
            "SupportedTransformInstanceTypes": ["ml.m5.xlarge"],
            "SupportedRealtimeInferenceInstanceTypes": list(group.instance_types),
            "SupportedContentTypes": [group.content_type],
            "SupportedResponseMIMETypes": [group.content_type],
        },
        MetadataProperties={
            "GeneratedBy": pipeline_execution,
            "Repository": group.repository,
            "CommitId": commit,
        },
        CustomerMetadataProperties=metadata,
        ModelMetrics=model_metrics,
        Domain="MACHINE_LEARNING",
        Task=group.task,
        ModelCard={
            "ModelCardContent": json.dumps(
                package_card_content(group, spec, model_data_url, _headline(group, report)), separators=(",", ":")
            ),
            "ModelCardStatus": card_status,
        },
    )["ModelPackageArn"]
    if spec.status != PENDING:
        # Send status, description and the full metadata together (moto blanks whatever is left out).
        sm.update_model_package(
            ModelPackageArn=arn,
            ModelApprovalStatus=spec.status,
            ApprovalDescription=spec.approval_note,
            CustomerMetadataProperties=metadata,
        )
    missing = [key for key in REPRODUCIBILITY_KEYS if key not in metadata]
    if missing:
        ctx.summary.missing_reproducibility[arn] = missing
    return arn


def _create_cards(ctx: _Context, clients: dict[bool, Any]) -> None:
    groups = {g.name: g for g in GROUPS}
    for card in CARDS:
        group = groups[card.group]
        spec = group.versions[card.version - 1]
        key = (group.name, card.version)
        report, report_uri = ctx.quality_reports[key]
        content = standalone_card_content(
            group,
            card.version,
            spec,
            region=ctx.regions[group.second_region],
            account=ctx.account,
            package_arn=ctx.arns[key],
            image=ctx.images[key],
            model_data_url=ctx.model_urls[key],
            report=report,
            report_uri=report_uri,
            training_dataset=ctx.datasets[key],
        )
        clients[group.second_region].create_model_card(
            ModelCardName=card.name,
            Content=json.dumps(content),
            ModelCardStatus=card.status,
            Tags=[{"Key": "Team", "Value": group.team}, {"Key": "RiskTier", "Value": group.risk_tier}],
        )
        ctx.summary.cards[card.name] = card.status


def _create_endpoints(ctx: _Context, clients: dict[bool, Any]) -> None:
    for endpoint in ENDPOINTS:
        sm = clients[endpoint.second_region]
        role = f"arn:aws:iam::{ctx.account}:role/{EXECUTION_ROLE}"
        variants = []
        served = []
        for variant, group, version, weight in endpoint.variants:
            arn = ctx.arns[(group, version)]
            model_name = f"{group}-v{version}"
            sm.create_model(
                ModelName=model_name,
                ExecutionRoleArn=role,
                PrimaryContainer={"ModelPackageName": arn},
                Tags=[{"Key": "ModelPackageGroup", "Value": group}],
            )
            variants.append(
                {
                    "VariantName": variant,
                    "ModelName": model_name,
                    "InitialInstanceCount": endpoint.instance_count,
                    "InstanceType": endpoint.instance_type,
                    "InitialVariantWeight": weight,
                }
            )
            served.append(arn)
        config_name = f"{endpoint.name}-config-{_hex(endpoint.name, length=8)}"
        sm.create_endpoint_config(EndpointConfigName=config_name, ProductionVariants=variants)
        sm.create_endpoint(EndpointName=endpoint.name, EndpointConfigName=config_name)
        ctx.summary.endpoints[endpoint.name] = served


def _planned_summary(ctx: _Context) -> None:
    """Fill the summary from the plan alone (used when an earlier run already seeded the registry)."""
    summary = ctx.summary
    summary.skipped = True
    for group in GROUPS:
        region = ctx.regions[group.second_region]
        bucket = ctx.buckets[group.second_region]
        summary.groups.setdefault(region, []).append(group.name)
        for version, spec in enumerate(group.versions, start=1):
            arn = f"arn:aws:sagemaker:{region}:{ctx.account}:model-package/{group.name}/{version}"
            ctx.arns[(group.name, version)] = arn
            summary.packages.setdefault(group.name, []).append(arn)
            uri = f"s3://{bucket}/{group.name}/{version}/evaluation.json"
            {REPORT_BROKEN: summary.broken_reports, REPORT_MISSING: summary.missing_reports}.get(
                spec.report, summary.reports
            ).append(uri)
            if group.bias:
                summary.reports.append(f"s3://{bucket}/{group.name}/{version}/bias/analysis.json")
            if spec.explainability:
                summary.reports.append(f"s3://{bucket}/{group.name}/{version}/explainability/analysis.json")
            missing = [key for key in REPRODUCIBILITY_KEYS if key in spec.missing_keys]
            if missing:
                summary.missing_reproducibility[arn] = missing
    summary.cards = {card.name: card.status for card in CARDS}
    summary.endpoints = {e.name: [ctx.arns[(g, v)] for _, g, v, _ in e.variants] for e in ENDPOINTS}


def seed_registry(
    *,
    region: str = "eu-west-1",
    second_region: str = "us-east-1",
    bucket: str = "acme-ml-artifacts",
    cloudtrail_bucket: str = CLOUDTRAIL_BUCKET,
    now: dt.datetime | None = None,
) -> SeedSummary:
    """Create the demo registry in ``region`` and ``second_region`` (see the module docstring).

    Idempotent enough: when the first group already exists, nothing is created and the summary
    describes the planned (earlier-seeded) content with ``skipped=True``. ``cloudtrail_bucket`` ""
    writes no CloudTrail logs; ``now`` anchors their event times (default: the current minute).
    """
    sm_primary, s3_primary = _clients(region)
    sm_second, s3_second = _clients(second_region)
    account = boto3.Session(region_name=region).client("sts", config=_config()).get_caller_identity()["Account"]
    second_bucket = f"{bucket}-{second_region}"
    summary = SeedSummary(account_id=str(account), regions=(region, second_region), buckets=(bucket, second_bucket))
    ctx = _Context(
        rng=random.Random(RANDOM_SEED),
        account=str(account),
        regions={False: region, True: second_region},
        buckets={False: bucket, True: second_bucket},
        summary=summary,
    )
    sagemaker = {False: sm_primary, True: sm_second}
    s3 = {False: s3_primary, True: s3_second}
    statuses: Counter[str] = Counter(spec.status for group in GROUPS for spec in group.versions)
    summary.packages_by_status = dict(sorted(statuses.items()))

    anchor = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(second=0, microsecond=0)
    if _group_exists(sm_primary, GROUPS[0].name):
        _planned_summary(ctx)
        if cloudtrail_bucket:
            _summarise_cloudtrail(ctx, cloudtrail_records(ctx, anchor), cloudtrail_bucket)
        return summary

    _ensure_bucket(s3_primary, bucket, region)
    _ensure_bucket(s3_second, second_bucket, second_region)
    for group in GROUPS:
        sm = sagemaker[group.second_region]
        sm.create_model_package_group(
            ModelPackageGroupName=group.name,
            ModelPackageGroupDescription=group.description,
            Tags=[
                {"Key": "Team", "Value": group.team},
                {"Key": "RiskTier", "Value": group.risk_tier},
                {"Key": "CostCenter", "Value": group.cost_center},
                {"Key": "Owner", "Value": group.owner},
            ],
        )
        summary.groups.setdefault(ctx.regions[group.second_region], []).append(group.name)
        for version, spec in enumerate(group.versions, start=1):
            arn = _create_package(ctx, sm, s3[group.second_region], group, version, spec)
            ctx.arns[(group.name, version)] = arn
            summary.packages.setdefault(group.name, []).append(arn)
    _create_cards(ctx, sagemaker)
    _create_endpoints(ctx, sagemaker)
    summary.provenance = seed_provenance(ctx, sagemaker, GROUPS, now=anchor)  # training jobs and lineage
    _backdate(ctx, anchor)  # last: the provenance seed updates packages, which moves LastModifiedTime
    if cloudtrail_bucket:
        write_cloudtrail_logs(ctx, s3_primary, cloudtrail_bucket, region, anchor)
    return summary


# --------------------------------------------------------------------------------------------- CloudTrail logs


@dataclass(frozen=True)
class DeploymentStep:
    """One CreateEndpoint/UpdateEndpoint call of the demo's deployment history."""

    days_ago: float
    endpoint: str
    variants: tuple[tuple[str, str, int, float], ...]  # (variant name, group, version, initial weight)
    actor: str = "devon.ops@acme.example"  # an IAM Identity Center user (AWSReservedSSO_* role session)


# Each endpoint ends on exactly the config ENDPOINTS creates (so the mirror and CloudTrail agree).
DEPLOYMENTS: tuple[DeploymentStep, ...] = (
    DeploymentStep(135, "credit-default-prod", (("AllTraffic", "credit-default-xgb", 2, 1.0),)),
    DeploymentStep(100, "credit-default-prod", (("AllTraffic", "credit-default-xgb", 3, 1.0),)),
    DeploymentStep(35, "credit-default-prod", (("AllTraffic", "credit-default-xgb", 5, 1.0),)),
    # v5 misbehaved on the thin-file segment: rolled back to v3 two days later, v5 again after a fix.
    DeploymentStep(33, "credit-default-prod", (("AllTraffic", "credit-default-xgb", 3, 1.0),), actor="mlead"),
    DeploymentStep(25, "credit-default-prod", (("AllTraffic", "credit-default-xgb", 5, 1.0),)),
    DeploymentStep(150, "fraud-detector-live", (("Champion", "fraud-detector", 1, 1.0),)),
    DeploymentStep(85, "fraud-detector-live", (("Champion", "fraud-detector", 3, 1.0),)),
    DeploymentStep(
        40, "fraud-detector-live", (("Champion", "fraud-detector", 3, 0.9), ("Challenger", "fraud-detector", 4, 0.1))
    ),
    DeploymentStep(165, "demand-forecast-prod", (("AllTraffic", "demand-forecast", 1, 1.0),)),
    DeploymentStep(55, "demand-forecast-prod", (("AllTraffic", "demand-forecast", 3, 1.0),)),
)

PIPELINE_ROLE = "service-role/AmazonSageMaker-PipelineExecutionRole"
APPROVER_ROLE = "ModelApprover"
DASHBOARD_ROLE = "GovernanceDashboardReadOnly"
# Who decides: fairness reviews the models with bias reports, compliance the high-risk ones, the ML
# lead the rest; rejections come from the ML lead working in Studio.
DECIDER_FOR_RISK = {"High": "compliance", "Medium": "mlead", "Low": "mlead"}
_CT_NAMESPACE = uuid.UUID("6f1d3c52-2f0e-4c59-9a51-0d6f1b7e2a10")


def _ct_id(*parts: object) -> str:
    return str(uuid.uuid5(_CT_NAMESPACE, "|".join(str(p) for p in parts)))


def _studio_profile(owner_email: str) -> str:
    return owner_email.split("@", 1)[0].replace(".", "-")


class _Trail:
    """Builds CloudTrail records (aws-formats 2.1-2.4: lowerCamelCase parameters) for one account."""

    def __init__(self, account: str, now: dt.datetime) -> None:
        self.account = account
        self.now = now
        self.rng = random.Random(RANDOM_SEED + 1)  # its own stream: the registry content stays as it was
        self.records: list[tuple[str, dict[str, Any]]] = []  # (region, record)

    def when(self, days_ago: float, *, key: object) -> dt.datetime:
        """A working-hours time ``days_ago`` days before now (stable per key)."""
        return _working_hours(self.now, days_ago, key)

    # identities ----------------------------------------------------------------------------------
    def _role_identity(self, role: str, session: str, *, source_identity: str = "", invoked_by: str = "") -> dict:
        role_name = role.rsplit("/", 1)[-1]
        role_id = "AROA" + _hex("role", role, length=17).upper()
        context: dict[str, Any] = {
            "sessionIssuer": {
                "type": "Role",
                "principalId": role_id,
                "arn": f"arn:aws:iam::{self.account}:role/{role}",
                "accountId": self.account,
                "userName": role_name,
            },
            "webIdFederationData": {},
            "attributes": {"creationDate": "", "mfaAuthenticated": "false"},
        }
        if source_identity:
            context["sourceIdentity"] = source_identity
        identity: dict[str, Any] = {
            "type": "AssumedRole",
            "principalId": f"{role_id}:{session}",
            "arn": f"arn:aws:sts::{self.account}:assumed-role/{role_name}/{session}",
            "accountId": self.account,
            "accessKeyId": "ASIA" + _hex("key", role, session, length=16).upper(),
            "sessionContext": context,
        }
        if invoked_by:
            identity["invokedBy"] = invoked_by
        return identity

    def studio(self, profile: str) -> dict:
        """A Studio user: the domain's execution role, its ``SageMaker`` session, the profile as sourceIdentity."""
        return self._role_identity(EXECUTION_ROLE, "SageMaker", source_identity=profile)

    def pipeline(self) -> dict:
        return self._role_identity(PIPELINE_ROLE, "SageMaker", invoked_by="sagemaker.amazonaws.com")

    def approver(self, person: str) -> dict:
        return self._role_identity(APPROVER_ROLE, person, source_identity=person)

    def sso(self, person: str, permission_set: str = "MLPlatformDeployer") -> dict:
        return self._role_identity(
            f"aws-reserved/sso.amazonaws.com/AWSReservedSSO_{permission_set}_{_hex('ps', permission_set, length=16)}",
            person,
        )

    # records -------------------------------------------------------------------------------------
    def add(
        self,
        region: str,
        when: dt.datetime,
        name: str,
        identity: dict,
        request: dict[str, Any] | None,
        response: dict[str, Any] | None,
        *,
        source: str = "sagemaker.amazonaws.com",
        read_only: bool = False,
        error: str = "",
    ) -> dict[str, Any]:
        identity = json.loads(json.dumps(identity))
        context = identity.get("sessionContext")
        if context:
            context["attributes"]["creationDate"] = (when - dt.timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        key = (region, when.isoformat(), name, json.dumps(request, sort_keys=True))
        record: dict[str, Any] = {
            "eventVersion": "1.09",
            "userIdentity": identity,
            "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": source,
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": "sagemaker.amazonaws.com" if identity.get("invokedBy") else "198.51.100.24",
            "userAgent": "Boto3/1.37.0 md/Botocore#1.37.0 ua/2.1 os/linux lang/python#3.11.7",
            "requestParameters": request,
            "responseElements": None if error else response,
            "requestID": _ct_id("request", *key),
            "eventID": _ct_id("event", *key),
            "readOnly": read_only,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": self.account,
            "eventCategory": "Management",
            "tlsDetails": {
                "tlsVersion": "TLSv1.3",
                "cipherSuite": "TLS_AES_128_GCM_SHA256",
                "clientProvidedHostHeader": f"api.{source.split('.')[0]}.{region}.amazonaws.com",
            },
        }
        if error:
            record["errorCode"] = error
            record["errorMessage"] = f"User: {identity.get('arn')} is not authorized to perform: sagemaker:{name}"
        self.records.append((region, record))
        return record

    def assume_role(self, region: str, when: dt.datetime, person: str) -> None:
        """The approver's ``sts:AssumeRole`` with ``SourceIdentity``: ties the session to the person."""
        role_arn = f"arn:aws:iam::{self.account}:role/{APPROVER_ROLE}"
        session_arn = f"arn:aws:sts::{self.account}:assumed-role/{APPROVER_ROLE}/{person}"
        self.add(
            region,
            when - dt.timedelta(minutes=2),
            "AssumeRole",
            self.sso(person, "GovernanceApprover"),
            {"roleArn": role_arn, "roleSessionName": person, "sourceIdentity": person, "durationSeconds": 3600},
            {
                "credentials": {
                    "accessKeyId": "ASIA" + _hex("approver", person, length=16).upper(),
                    "sessionToken": "HIDDEN_DUE_TO_SECURITY_REASONS",
                    "expiration": (when + dt.timedelta(hours=1)).strftime("%b %d, %Y, %I:%M:%S %p"),
                },
                "assumedRoleUser": {"assumedRoleId": f"AROAAPPROVER:{person}", "arn": session_arn},
                "sourceIdentity": person,
            },
            source="sts.amazonaws.com",
        )


STUDIO_DOMAIN = "d-8f3k2m1q9xzt"


def _working_hours(now: dt.datetime, days_ago: float, key: object) -> dt.datetime:
    """A working-hours time ``days_ago`` days before ``now`` (stable per key), never within the last hour."""
    day = (now - dt.timedelta(days=days_ago)).date()
    minutes = int(hashlib.sha256(str(key).encode()).hexdigest()[:6], 16) % (8 * 60)
    moment = dt.datetime.combine(day, dt.time(8, 30), tzinfo=dt.UTC) + dt.timedelta(minutes=minutes)
    return min(moment, now - dt.timedelta(hours=1))


def registered_at(now: dt.datetime, group: GroupSpec, version: int) -> dt.datetime:
    """When a version was registered: ``hours_ago`` exactly, else on the group's six-month spread.
    The fake's ``CreationTime`` and the CloudTrail ``CreateModelPackage`` record agree on it."""
    spec = group.versions[version - 1]
    if spec.hours_ago:
        return now - dt.timedelta(hours=spec.hours_ago)
    return _working_hours(now, _version_days(group, version), ("package", group.name, version))


def decided_at(now: dt.datetime, group: GroupSpec, version: int) -> dt.datetime:
    """When a decided version was approved or rejected (in the registry, before the dashboard)."""
    return registered_at(now, group, version) + dt.timedelta(days=2, hours=1)


def registrant_profile(group: GroupSpec, spec: VersionSpec) -> str:
    """The Studio user profile that registered a version; "" when the training pipeline did."""
    if spec.registrant:
        return spec.registrant
    return _studio_profile(group.owner) if "Studio notebook" in spec.description else ""


def decider(group: GroupSpec, spec: VersionSpec) -> str:
    """Who decided a version in the registry: rejections in Studio by the ML lead, approvals through
    the approver role by the reviewer for the group's risk (fairness where bias reports exist)."""
    if spec.status == REJECTED:
        return "mlead"
    return "fairness" if group.bias else DECIDER_FOR_RISK.get(group.risk_tier, "mlead")


def _role_session_context(account: str, role: str, session: str, source_identity: str = "") -> dict[str, Any]:
    role_id = "AROA" + _hex("role", role, length=17).upper()
    identity = {
        "Arn": f"arn:aws:sts::{account}:assumed-role/{role.rsplit('/', 1)[-1]}/{session}",
        "PrincipalId": f"{role_id}:{session}",
    }
    if source_identity:
        identity["SourceIdentity"] = source_identity
    return {"IamIdentity": identity}


def studio_user_context(account: str, region: str, profile: str) -> dict[str, Any]:
    """``CreatedBy`` of a Studio user's call: the profile, and the domain's execution role session."""
    return {
        "UserProfileArn": f"arn:aws:sagemaker:{region}:{account}:user-profile/{STUDIO_DOMAIN}/{profile}",
        "UserProfileName": profile,
        "DomainId": STUDIO_DOMAIN,
        **_role_session_context(account, EXECUTION_ROLE, "SageMaker", profile),
    }


def registrant_context(account: str, region: str, group: GroupSpec, spec: VersionSpec) -> dict[str, Any]:
    profile = registrant_profile(group, spec)
    if profile:
        return studio_user_context(account, region, profile)
    return _role_session_context(account, PIPELINE_ROLE, "SageMaker")


def decider_context(account: str, region: str, group: GroupSpec, spec: VersionSpec) -> dict[str, Any]:
    person = decider(group, spec)
    if spec.status == REJECTED:
        return studio_user_context(account, region, person)
    return _role_session_context(account, APPROVER_ROLE, person, person)


def _backdate(ctx: _Context, now: dt.datetime) -> None:
    """Give the fake's packages and groups the times and registrants of the demo's history (AWS stamps
    the moment and principal of the call; a seed made in one go would show one second and one person).
    Through the fake's hook: in this process under ``mock_aws()``, else over HTTP (``AWS_ENDPOINT_URL``)."""
    from registry_app.devtools import aws_fake

    endpoint_url = os.environ.get("AWS_ENDPOINT_URL") or None
    for group in GROUPS:
        region = ctx.regions[group.second_region]
        aws_fake.backdate_group(
            f"arn:aws:sagemaker:{region}:{ctx.account}:model-package-group/{group.name}",
            _working_hours(now, 178, ("group", group.name)),
            created_by=studio_user_context(ctx.account, region, _studio_profile(group.owner)),
            endpoint_url=endpoint_url,
        )
        for version, spec in enumerate(group.versions, start=1):
            created = registered_at(now, group, version)
            pending = spec.status == PENDING
            creator = registrant_context(ctx.account, region, group, spec)
            aws_fake.backdate_package(
                ctx.arns[(group.name, version)],
                created,
                created_by=creator,
                last_modified_time=created if pending else decided_at(now, group, version),
                last_modified_by=creator if pending else decider_context(ctx.account, region, group, spec),
                endpoint_url=endpoint_url,
            )
            ctx.summary.created_at[ctx.arns[(group.name, version)]] = created


def _version_days(group: GroupSpec, version: int) -> float:
    """When a version was registered: the group's versions spread from 175 to 8 days ago."""
    count = len(group.versions)
    return 175.0 - (version - 1) * (167.0 / max(1, count - 1))


def _config_name(step: DeploymentStep) -> str:
    final = next(e for e in ENDPOINTS if e.name == step.endpoint)
    live = tuple((v, g, n, w) for v, g, n, w in final.variants)
    if step.variants == live:
        return f"{step.endpoint}-config-{_hex(step.endpoint, length=8)}"  # what _create_endpoints creates
    return f"{step.endpoint}-config-" + "-".join(f"v{n}w{int(w * 100)}" for _, _, n, w in step.variants)


def cloudtrail_records(ctx: _Context, now: dt.datetime) -> list[tuple[str, dict[str, Any]]]:
    """Every CloudTrail record of the demo's history, as (region, record), oldest first."""
    trail = _Trail(ctx.account, now)
    groups = {g.name: g for g in GROUPS}
    for group in GROUPS:
        region = ctx.regions[group.second_region]
        owner = _studio_profile(group.owner)
        created = trail.when(178, key=("group", group.name))
        trail.add(
            region,
            created,
            "CreateModelPackageGroup",
            trail.studio(owner),
            {
                "modelPackageGroupName": group.name,
                "modelPackageGroupDescription": group.description,
                "tags": [{"key": "Team", "value": group.team}, {"key": "RiskTier", "value": group.risk_tier}],
            },
            {"modelPackageGroupArn": f"arn:aws:sagemaker:{region}:{ctx.account}:model-package-group/{group.name}"},
        )
        for version, spec in enumerate(group.versions, start=1):
            arn = ctx.arns[(group.name, version)]
            registered = registered_at(now, group, version)
            profile = registrant_profile(group, spec)
            trail.add(
                region,
                registered,
                "CreateModelPackage",
                trail.studio(profile) if profile else trail.pipeline(),
                {
                    "modelPackageGroupName": group.name,
                    "modelPackageDescription": spec.description,
                    "modelApprovalStatus": PENDING,
                    "inferenceSpecification": {
                        "containers": [
                            {
                                "image": ctx.images.get((group.name, version), ""),
                                "modelDataUrl": ctx.model_urls.get(
                                    (group.name, version),
                                    f"s3://{ctx.buckets[group.second_region]}/{group.name}/{version}/model.tar.gz",
                                ),
                            }
                        ],
                        "supportedContentTypes": [group.content_type],
                        "supportedResponseMIMETypes": [group.content_type],
                    },
                    "customerMetadataProperties": {"ticket": spec.ticket, "team": group.team},
                    "modelCard": {"modelCardContent": "HIDDEN_DUE_TO_SECURITY_REASONS", "modelCardStatus": "Draft"},
                },
                {"modelPackageArn": arn},
            )
            if spec.status == PENDING:
                continue
            decided = decided_at(now, group, version)
            person = decider(group, spec)
            if spec.status == REJECTED:
                identity = trail.studio(person)
            else:
                trail.assume_role(region, decided, person)
                identity = trail.approver(person)
            trail.add(
                region,
                decided,
                "UpdateModelPackage",
                identity,
                {"modelPackageArn": arn, "modelApprovalStatus": spec.status, "approvalDescription": spec.approval_note},
                {"modelPackageArn": arn},
            )
    _card_records(ctx, trail, groups)
    _deployment_records(ctx, trail)
    _noise_records(ctx, trail)
    return sorted(trail.records, key=lambda item: (item[1]["eventTime"], item[1]["eventID"]))


def _card_records(ctx: _Context, trail: _Trail, groups: dict[str, GroupSpec]) -> None:
    for card in CARDS:
        group = groups[card.group]
        region = ctx.regions[group.second_region]
        owner = trail.studio(_studio_profile(group.owner))
        card_arn = f"arn:aws:sagemaker:{region}:{ctx.account}:model-card/{card.name}"
        start = trail.when(_version_days(group, card.version) - 1, key=("card", card.name))
        trail.add(
            region,
            start,
            "CreateModelCard",
            owner,
            {"modelCardName": card.name, "content": "HIDDEN_DUE_TO_SECURITY_REASONS", "modelCardStatus": "Draft"},
            {"modelCardArn": card_arn},
        )
        if card.status in ("PendingReview", "Approved"):
            trail.add(
                region,
                start + dt.timedelta(days=2),
                "UpdateModelCard",
                owner,
                {"modelCardName": card.name, "modelCardStatus": "PendingReview"},
                {"modelCardArn": card_arn},
            )
        if card.status == "Approved":
            trail.assume_role(region, start + dt.timedelta(days=4), "compliance")
            trail.add(
                region,
                start + dt.timedelta(days=4),
                "UpdateModelCard",
                trail.approver("compliance"),
                {"modelCardName": card.name, "modelCardStatus": "Approved"},
                {"modelCardArn": card_arn},
            )


def _deployment_records(ctx: _Context, trail: _Trail) -> None:
    role = f"arn:aws:iam::{ctx.account}:role/{EXECUTION_ROLE}"
    models: set[str] = set()
    configs: set[str] = set()
    endpoints: set[str] = set()
    for step in sorted(DEPLOYMENTS, key=lambda s: -s.days_ago):
        spec = next(e for e in ENDPOINTS if e.name == step.endpoint)
        region = ctx.regions[spec.second_region]
        at = trail.when(step.days_ago, key=("deploy", step.endpoint, step.days_ago))
        actor = trail.sso(step.actor)
        config = _config_name(step)
        for _, group, version, _ in step.variants:
            model = f"{group}-v{version}"
            if model in models:
                continue
            models.add(model)
            trail.add(
                region,
                at,
                "CreateModel",
                actor,
                {
                    "modelName": model,
                    "primaryContainer": {"modelPackageName": ctx.arns[(group, version)]},
                    "executionRoleArn": role,
                    "tags": [{"key": "ModelPackageGroup", "value": group}],
                },
                {"modelArn": f"arn:aws:sagemaker:{region}:{ctx.account}:model/{model}"},
            )
        if config not in configs:
            configs.add(config)
            trail.add(
                region,
                at + dt.timedelta(minutes=1),
                "CreateEndpointConfig",
                actor,
                {
                    "endpointConfigName": config,
                    "productionVariants": [
                        {
                            "variantName": variant,
                            "modelName": f"{group}-v{version}",
                            "initialInstanceCount": spec.instance_count,
                            "instanceType": spec.instance_type,
                            "initialVariantWeight": weight,
                        }
                        for variant, group, version, weight in step.variants
                    ],
                },
                {"endpointConfigArn": f"arn:aws:sagemaker:{region}:{ctx.account}:endpoint-config/{config}"},
            )
        name = "UpdateEndpoint" if step.endpoint in endpoints else "CreateEndpoint"
        endpoints.add(step.endpoint)
        trail.add(
            region,
            at + dt.timedelta(minutes=2),
            name,
            actor,
            {"endpointName": step.endpoint, "endpointConfigName": config},
            {"endpointArn": f"arn:aws:sagemaker:{region}:{ctx.account}:endpoint/{step.endpoint}"},
        )
        ctx.summary.deployment_steps[step.endpoint] = ctx.summary.deployment_steps.get(step.endpoint, 0) + 1


def _noise_records(ctx: _Context, trail: _Trail) -> None:
    """What a real trail also holds: the dashboard's own reads, and a call that was denied."""
    region = ctx.regions[False]
    dashboard = trail._role_identity(DASHBOARD_ROLE, "governance-dashboard")
    for days in range(0, CLOUDTRAIL_DAYS, 9):
        arn = ctx.arns[(GROUPS[days % len(GROUPS)].name, 1)]
        trail.add(
            ctx.regions[GROUPS[days % len(GROUPS)].second_region],
            trail.when(days + 0.5, key=("read", days)),
            "DescribeModelPackage",
            dashboard,
            {"modelPackageName": arn},
            None,
            read_only=True,
        )
    pending = ctx.arns[("credit-default-xgb", 6)]
    trail.add(
        region,
        trail.when(5, key="denied"),
        "UpdateModelPackage",
        trail.studio("vera-novak"),
        {"modelPackageArn": pending, "modelApprovalStatus": APPROVED, "approvalDescription": "looks fine"},
        {"modelPackageArn": pending},
        error="AccessDenied",
    )


def cloudtrail_files(account: str, records: list[tuple[str, dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Group records into log files the way a trail delivers them: per Region, every five minutes."""
    files: dict[str, list[dict[str, Any]]] = {}
    for region, record in records:
        when = dt.datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        delivered = when.replace(minute=when.minute - when.minute % 5, second=0) + dt.timedelta(minutes=5)
        unique = _hex("file", region, delivered.isoformat(), length=16)
        key = (
            f"AWSLogs/{account}/CloudTrail/{region}/{delivered:%Y/%m/%d}/"
            f"{account}_CloudTrail_{region}_{delivered:%Y%m%dT%H%MZ}_{unique}.json.gz"
        )
        files.setdefault(key, []).append(record)
    return files


def _summarise_cloudtrail(ctx: _Context, records: list[tuple[str, dict[str, Any]]], bucket: str) -> dict[str, Any]:
    files = cloudtrail_files(ctx.account, records)
    ctx.summary.cloudtrail_bucket = bucket
    ctx.summary.cloudtrail_files = len(files)
    ctx.summary.cloudtrail_events = len(records)
    return files


def write_cloudtrail_logs(ctx: _Context, s3: Any, bucket: str, region: str, now: dt.datetime) -> None:
    """Upload the history as gzip'd log files, plus a signed digest file per Region and day (the
    dashboard validates the files against them: registry_app/devtools/signed_digests.py)."""
    from registry_app.devtools.signed_digests import write_signed_digests

    _ensure_bucket(s3, bucket, region)
    files = _summarise_cloudtrail(ctx, cloudtrail_records(ctx, now), bucket)
    hashes: dict[str, str] = {}
    for key, records in sorted(files.items()):
        plain = json.dumps({"Records": records}).encode()
        body = gzip.compress(plain, mtime=0)
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json", ContentEncoding="gzip")
        hashes[key] = hashlib.sha256(plain).hexdigest()
    write_signed_digests(s3, bucket, ctx.account, hashes, now=now)
