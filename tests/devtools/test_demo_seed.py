"""The demo registry seed, against in-process moto: shape, report formats, cards, endpoints, idempotency."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from registry_app.devtools import demo_seed
from registry_app.devtools.demo_seed import SeedSummary, seed_registry
from registry_app.mirror.reports import values as reports
from registry_app.mirror.reports.parse import parse_report

REGION = "eu-west-1"
SECOND = "us-east-1"
BUCKET = "acme-ml-artifacts"
STATUSES = {"PendingManualApproval", "Approved", "Rejected"}
QUALITY_SECTIONS = {
    demo_seed.BINARY: "binary_classification_metrics",
    demo_seed.REGRESSION: "regression_metrics",
    demo_seed.MULTICLASS: "multiclass_classification_metrics",
}
PROBLEM = {group.name: group.problem for group in demo_seed.GROUPS}


@pytest.fixture
def seeded(aws: None) -> Iterator[SeedSummary]:
    yield seed_registry(region=REGION, second_region=SECOND, bucket=BUCKET)


def sagemaker(region: str = REGION) -> Any:
    return boto3.client("sagemaker", region_name=region)


def s3() -> Any:
    return boto3.client("s3", region_name=REGION)


def groups_in(region: str) -> list[str]:
    return [
        g["ModelPackageGroupName"]
        for g in sagemaker(region).list_model_package_groups()["ModelPackageGroupSummaryList"]
    ]


def packages_of(group: str, region: str = REGION) -> list[dict[str, Any]]:
    summaries = sagemaker(region).list_model_packages(ModelPackageGroupName=group, MaxResults=100)[
        "ModelPackageSummaryList"
    ]
    return sorted(summaries, key=lambda s: s["ModelPackageVersion"])


def all_packages() -> list[tuple[str, dict[str, Any]]]:
    """(region, DescribeModelPackage) for every seeded version."""
    out = []
    for region in (REGION, SECOND):
        client = sagemaker(region)
        for group in groups_in(region):
            for summary in packages_of(group, region):
                out.append((region, client.describe_model_package(ModelPackageName=summary["ModelPackageArn"])))
    return out


def get_body(uri: str) -> bytes:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return bytes(s3().get_object(Bucket=bucket, Key=key)["Body"].read())


def metric_sources(package: dict[str, Any]) -> list[tuple[str, str]]:
    """(slot, S3Uri) for every report a package's ModelMetrics points at."""
    refs = []
    for section, leaves in (package.get("ModelMetrics") or {}).items():
        for leaf, source in leaves.items():
            assert source["ContentType"] == "application/json"
            refs.append((f"{section}.{leaf}", source["S3Uri"]))
    return refs


# --------------------------------------------------------------------------------------------- registry shape


def test_groups_span_two_regions_with_tags(seeded: SeedSummary) -> None:
    primary, second = groups_in(REGION), groups_in(SECOND)
    assert len(primary) >= 5
    assert second == ["demand-forecast"]
    assert {"credit-default-xgb", "house-price-regressor", "churn-propensity", "fraud-detector"} <= set(primary)
    assert {PROBLEM[name] for name in primary + second} == set(QUALITY_SECTIONS)
    for region, names in ((REGION, primary), (SECOND, second)):
        client = sagemaker(region)
        for name in names:
            group = client.describe_model_package_group(ModelPackageGroupName=name)
            assert len(group["ModelPackageGroupDescription"]) > 40
            tags = {t["Key"]: t["Value"] for t in client.list_tags(ResourceArn=group["ModelPackageGroupArn"])["Tags"]}
            assert {"Team", "RiskTier", "CostCenter"} <= set(tags)
            assert tags["RiskTier"] in {"High", "Medium", "Low"}
    assert sorted(seeded.groups[REGION]) == sorted(primary)
    assert seeded.groups[SECOND] == second


def test_versions_and_approval_statuses(seeded: SeedSummary) -> None:
    overall: Counter[str] = Counter()
    newest_pending = 0
    group_names = [(REGION, g) for g in groups_in(REGION)] + [(SECOND, g) for g in groups_in(SECOND)]
    for region, group in group_names:
        versions = packages_of(group, region)
        assert 3 <= len(versions) <= 8, group
        assert [v["ModelPackageVersion"] for v in versions] == list(range(1, len(versions) + 1))
        statuses = {v["ModelApprovalStatus"] for v in versions}
        assert statuses <= STATUSES
        assert len(statuses) >= 2, f"{group} has only {statuses}"
        overall.update(v["ModelApprovalStatus"] for v in versions)
        newest_pending += versions[-1]["ModelApprovalStatus"] == "PendingManualApproval"
    assert set(overall) == STATUSES
    assert newest_pending > len(group_names) / 2  # reviewers have work in most groups
    assert dict(overall) == seeded.packages_by_status
    assert sum(overall.values()) == seeded.package_count


def test_packages_look_like_pipeline_output(seeded: SeedSummary) -> None:
    for region, package in all_packages():
        container = package["InferenceSpecification"]["Containers"][0]
        assert container["Image"].startswith(("763104351884.dkr.ecr.", "141502667606.dkr.ecr."))
        assert f".dkr.ecr.{region}.amazonaws.com/" in container["Image"]
        assert container["ImageDigest"].startswith("sha256:") and len(container["ImageDigest"]) == 71
        assert container["ModelDataUrl"].startswith("s3://") and container["ModelDataUrl"].endswith("/model.tar.gz")
        meta = package["MetadataProperties"]
        assert meta["GeneratedBy"].startswith(f"arn:aws:sagemaker:{region}:123456789012:pipeline/")
        assert "/execution/" in meta["GeneratedBy"]
        assert meta["Repository"].startswith("https://") and len(meta["CommitId"]) == 40
        custom = package["CustomerMetadataProperties"]
        assert custom["owner"].endswith("@acme.example") and custom["ticket"].startswith("MLGOV-")
        if "ContainerImageDigest" in custom:
            assert custom["ContainerImageDigest"] == container["ImageDigest"]
        if package["ModelApprovalStatus"] != "PendingManualApproval":
            assert package["ApprovalDescription"]
        assert package["ModelPackageDescription"]


def test_reproducibility_keys_mostly_present(seeded: SeedSummary) -> None:
    missing = {
        package["ModelPackageArn"]: [
            k for k in demo_seed.REPRODUCIBILITY_KEYS if k not in package["CustomerMetadataProperties"]
        ]
        for _, package in all_packages()
    }
    incomplete = {arn: keys for arn, keys in missing.items() if keys}
    assert incomplete, "at least one package must lack a reproducibility key"
    assert len(incomplete) < len(missing) / 2, "most packages carry every reproducibility key"
    assert incomplete == seeded.missing_reproducibility


# --------------------------------------------------------------------------------------------- reports


def assert_monotone(values: list[float], *, increasing: bool) -> None:
    pairs = list(zip(values, values[1:], strict=False))
    assert all((b >= a) if increasing else (b <= a) for a, b in pairs), values


def check_binary(section: dict[str, Any]) -> None:
    for key in ("auc", "accuracy", "precision", "recall", "f1", "false_positive_rate", "true_positive_rate"):
        value = section[key]["value"]
        assert 0 <= value <= 1, key
        assert (
            isinstance(section[key]["standard_deviation"], float | int) or section[key]["standard_deviation"] == "NaN"
        )
    matrix = section["confusion_matrix"]
    assert set(matrix) == {"0", "1"} and all(set(row) == {"0", "1"} for row in matrix.values())
    tp, fp = matrix["1"]["1"], matrix["0"]["1"]
    assert section["precision"]["value"] == pytest.approx(tp / (tp + fp), abs=1e-5)
    assert section["recall"]["value"] == pytest.approx(tp / (tp + matrix["1"]["0"]), abs=1e-5)
    roc = section["receiver_operating_characteristic_curve"]
    fpr, tpr = roc["false_positive_rates"], roc["true_positive_rates"]
    assert len(fpr) == len(tpr) >= 5 and fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert_monotone(fpr, increasing=True)
    assert_monotone(tpr, increasing=True)
    assert all(t >= f for f, t in zip(fpr, tpr, strict=True))  # better than random everywhere
    pr = section["precision_recall_curve"]
    assert len(pr["precisions"]) == len(pr["recalls"])
    assert_monotone(pr["recalls"], increasing=True)
    assert_monotone(pr["precisions"], increasing=False)


def check_regression(section: dict[str, Any]) -> None:
    if set(section) == {"mse"}:  # the Pipelines abalone-style evaluation.json
        assert section["mse"]["value"] > 0
        return
    assert set(section) == {"mae", "mse", "rmse", "r2"}
    assert section["rmse"]["value"] == pytest.approx(section["mse"]["value"] ** 0.5, rel=1e-4)
    assert 0 < section["mae"]["value"] <= section["rmse"]["value"]
    assert 0 < section["r2"]["value"] < 1


def check_multiclass(section: dict[str, Any]) -> None:
    matrix = section["confusion_matrix"]
    labels = set(matrix)
    assert len(labels) >= 3 and all(set(row) <= labels for row in matrix.values())
    total = sum(sum(row.values()) for row in matrix.values())
    correct = sum(matrix[label][label] for label in labels)
    assert section["accuracy"]["value"] == pytest.approx(correct / total, abs=1e-5)
    for key in ("weighted_recall", "weighted_precision", "weighted_f1", "accuracy_best_constant_classifier"):
        assert 0 < section[key]["value"] < 1


def check_bias(document: dict[str, Any]) -> None:
    assert document["version"] == "1.0"
    names: dict[str, set[str]] = {}
    for stage in ("pre_training_bias_metrics", "post_training_bias_metrics"):
        block = document[stage]
        assert block["label"] and block["label_value_or_threshold"] == "1"
        names[stage] = set()
        for facet_values in block["facets"].values():
            for entry in facet_values:
                assert entry["value_or_threshold"]
                for metric in entry["metrics"]:
                    assert set(metric) == {"name", "description", "value"}
                    assert metric["description"].endswith(f"({metric['name']})")
                    names[stage].add(metric["name"])
    assert {"CI", "DPL"} <= names["pre_training_bias_metrics"]
    assert {"DPPL", "DI", "AD"} <= names["post_training_bias_metrics"]


def test_reports_are_fetchable_and_in_the_standard_formats(seeded: SeedSummary) -> None:
    readable, broken, missing = [], [], []
    nan_std_seen = False
    for _, package in all_packages():
        group = package["ModelPackageGroupName"]
        refs = dict(metric_sources(package))
        assert "ModelQuality.Statistics" in refs
        bucket = f"{BUCKET}-{SECOND}" if group == "demand-forecast" else BUCKET
        expected = f"s3://{bucket}/{group}/{package['ModelPackageVersion']}/evaluation.json"
        assert refs["ModelQuality.Statistics"] == expected
        if group == "fraud-detector":
            assert refs["Bias.Report"].endswith("/bias/analysis.json")
        for slot, uri in refs.items():
            try:
                body = get_body(uri)
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "NoSuchKey"
                missing.append(uri)
                continue
            try:
                document = json.loads(body)
            except ValueError:
                broken.append(uri)
                with pytest.raises(reports.ReportParseError):
                    parse_report(body)
                continue
            readable.append(uri)
            parsed = parse_report(body)
            assert not parsed.warnings, (uri, parsed.warnings)
            if slot == "ModelQuality.Statistics":
                section_name = QUALITY_SECTIONS[PROBLEM[group]]
                assert list(document) == [section_name], uri
                {"binary": check_binary, "regression": check_regression, "multiclass": check_multiclass}[
                    PROBLEM[group]
                ](document[section_name])
                assert parsed.kind == {"binary": reports.KIND_BINARY, "regression": reports.KIND_REGRESSION}.get(
                    PROBLEM[group], reports.KIND_MULTICLASS
                )
                nan_std_seen = nan_std_seen or any(
                    isinstance(m, dict) and m.get("standard_deviation") == "NaN"
                    for m in document[section_name].values()
                )
            elif slot == "Bias.Report":
                check_bias(document)
                assert parsed.kind == reports.KIND_BIAS
            else:
                assert slot == "Explainability.Report" and parsed.kind == reports.KIND_EXPLAINABILITY
    assert len(broken) == 1 and len(missing) == 1
    assert broken == seeded.broken_reports and missing == seeded.missing_reports
    assert sorted(readable) == sorted(seeded.reports)
    assert nan_std_seen, 'one regression report must carry "NaN" standard deviations'


def quality(group: str, version: int) -> float:
    section = json.loads(get_body(f"s3://{BUCKET}/{group}/{version}/evaluation.json"))["binary_classification_metrics"]
    return float(section["auc"]["value"])


def test_metrics_improve_over_versions_with_one_regression(seeded: SeedSummary) -> None:
    aucs = [quality("credit-default-xgb", v) for v in range(1, 7)]
    assert aucs[-1] > aucs[0]
    assert aucs[3] < aucs[2]  # v4 is the rejected regression
    fraud = [quality("fraud-detector", v) for v in range(1, 6)]
    assert fraud == sorted(fraud)
    dis = {}
    for version in range(1, 6):
        document = json.loads(get_body(f"s3://{BUCKET}/fraud-detector/{version}/bias/analysis.json"))
        age = document["post_training_bias_metrics"]["facets"]["customer_age_band"][0]["metrics"]
        dis[version] = next(m["value"] for m in age if m["name"] == "DI")
    assert dis[2] < 0.8 <= min(v for k, v in dis.items() if k != 2)  # v2 failed the four-fifths rule


# --------------------------------------------------------------------------------------------- cards, endpoints


def test_model_cards_in_every_review_state_and_linked(seeded: SeedSummary) -> None:
    cards: dict[str, dict[str, Any]] = {}
    for region in (REGION, SECOND):
        client = sagemaker(region)
        for summary in client.list_model_cards()["ModelCardSummaries"]:
            cards[summary["ModelCardName"]] = client.describe_model_card(ModelCardName=summary["ModelCardName"])
    assert {c["ModelCardStatus"] for c in cards.values()} >= {"Draft", "PendingReview", "Approved"}
    assert {name: c["ModelCardStatus"] for name, c in cards.items()} == seeded.cards
    for card in cards.values():
        content = json.loads(card["Content"])
        assert {
            "model_overview",
            "intended_uses",
            "business_details",
            "training_details",
            "evaluation_details",
            "additional_information",
        } <= set(content)
        assert content["intended_uses"]["risk_rating"] in {"High", "Medium", "Low", "Unknown"}
        assert content["model_package_details"]["model_package_arn"].startswith("arn:aws:sagemaker:")
        for evaluation in content["evaluation_details"]:
            for group in evaluation["metric_groups"]:
                for item in group["metric_data"]:
                    if item["type"] == "linear_graph":
                        assert 1 <= len(item["value"]) <= 20
    linked = [
        (package["CustomerMetadataProperties"]["ModelCardName"], package["ModelPackageArn"])
        for _, package in all_packages()
        if "ModelCardName" in package["CustomerMetadataProperties"]
    ]
    assert len(linked) >= len(cards)
    for name, _ in linked:
        assert name in cards


def test_embedded_package_card_follows_the_package_schema() -> None:
    group = demo_seed.GROUPS[0]
    content = demo_seed.package_card_content(group, group.versions[0], "s3://b/k/model.tar.gz", [("auc", 0.8)])
    assert set(content["model_overview"]) == {"model_creator", "model_artifact"}  # package schema limit
    assert "model_package_details" not in content
    assert content["intended_uses"]["risk_rating"] == "High"
    assert len(json.dumps(content)) < 100_000


def resolve(endpoint: str, region: str = REGION) -> list[tuple[str, float, dict[str, Any]]]:
    """endpoint -> config -> models -> packages: (variant, weight, package)."""
    client = sagemaker(region)
    config_name = client.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    out = []
    for variant in client.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]:
        model = client.describe_model(ModelName=variant["ModelName"])
        package = client.describe_model_package(ModelPackageName=model["PrimaryContainer"]["ModelPackageName"])
        out.append((variant["VariantName"], variant["InitialVariantWeight"], package))
    return out


def test_endpoints_serve_approved_packages(seeded: SeedSummary) -> None:
    [(variant, weight, package)] = resolve("credit-default-prod")
    assert (variant, weight) == ("AllTraffic", 1.0)
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["ModelPackageGroupName"] == "credit-default-xgb"
    canary = resolve("fraud-detector-live")
    assert sorted(w for _, w, _ in canary) == [0.1, 0.9]
    assert all(p["ModelApprovalStatus"] == "Approved" for _, _, p in canary)
    [(_, _, forecast)] = resolve("demand-forecast-prod", SECOND)
    assert forecast["ModelApprovalStatus"] == "Approved"
    assert seeded.endpoints["credit-default-prod"] == [package["ModelPackageArn"]]


# --------------------------------------------------------------------------------------------- idempotency, determinism


def test_second_run_is_a_no_op(seeded: SeedSummary) -> None:
    before = len(all_packages())
    again = seed_registry(region=REGION, second_region=SECOND, bucket=BUCKET)
    assert again.skipped and not seeded.skipped
    assert len(all_packages()) == before
    assert again.packages == seeded.packages
    assert again.cards == seeded.cards and again.endpoints == seeded.endpoints
    assert again.broken_reports == seeded.broken_reports and again.missing_reports == seeded.missing_reports
    assert sorted(again.reports) == sorted(seeded.reports)
    assert any("already seeded" in line for line in again.lines())


def test_content_is_deterministic() -> None:
    from moto import mock_aws

    bodies = []
    for _ in range(2):
        with mock_aws():
            seed_registry(region=REGION, second_region=SECOND, bucket=BUCKET)
            arn = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/credit-default-xgb/6"
            package = sagemaker().describe_model_package(ModelPackageName=arn)
            bodies.append(
                (
                    get_body(f"s3://{BUCKET}/credit-default-xgb/6/evaluation.json"),
                    get_body(f"s3://{BUCKET}/fraud-detector/2/bias/analysis.json"),
                    package["CustomerMetadataProperties"],
                    package["MetadataProperties"],
                )
            )
    assert bodies[0] == bodies[1]


# --------------------------------------------------------------------------------------------- times and registrants


def _created(package: dict[str, Any]) -> Any:
    import datetime as dt

    return package["CreationTime"].astimezone(dt.UTC)


def test_creation_times_spread_over_months_and_agree_with_cloudtrail(seeded: SeedSummary) -> None:
    import datetime as dt

    packages = {p["ModelPackageArn"]: p for _, p in all_packages()}
    created = {arn: _created(p) for arn, p in packages.items()}
    assert created == {
        arn: when.replace(microsecond=when.microsecond - when.microsecond % 1000)
        for arn, when in seeded.created_at.items()
    }
    span = max(created.values()) - min(created.values())
    assert span > dt.timedelta(days=150)
    assert len({c.date() for c in created.values()}) > 10  # not one second: "Last change" differs too
    assert len({p["LastModifiedTime"] for p in packages.values()}) == len(packages)
    for group, arns in seeded.packages.items():
        times = [created[arn] for arn in arns]
        assert times == sorted(times), group  # versions registered in order
    decided = [p for p in packages.values() if p["ModelApprovalStatus"] != demo_seed.PENDING]
    assert all(p["LastModifiedTime"] > p["CreationTime"] for p in decided)


def test_pending_versions_are_overdue_due_soon_and_within_their_sla(seeded: SeedSummary) -> None:
    import datetime as dt

    from registry_app.management.commands.create_demo_policies import DEMO_POLICIES

    sla = {entry["spec"]["name"]: entry["spec"]["sla_hours"] for entry in DEMO_POLICIES}
    now = dt.datetime.now(dt.UTC)
    states = Counter()
    for group in demo_seed.GROUPS:
        policy = (
            "house-price"
            if group.name == "house-price-regressor"
            else ("high-risk" if group.risk_tier == "High" else "default")
        )
        for version, spec in enumerate(group.versions, start=1):
            if spec.status != demo_seed.PENDING:
                continue
            age = (now - seeded.created_at[seeded.packages[group.name][version - 1]]) / dt.timedelta(hours=1)
            limit = sla[policy]
            states["overdue" if age > limit else "due_soon" if age >= 0.75 * limit else "ok"] += 1
    assert states["overdue"] >= 2 and states["due_soon"] >= 2 and states["ok"] >= 1, states


def test_registrants_are_people_and_one_is_a_demo_login(seeded: SeedSummary) -> None:
    from registry_app.permissions import principal_names

    names: dict[str, list[str]] = {}
    for _, package in all_packages():
        created_by = package["CreatedBy"]
        assert created_by.get("IamIdentity", {}).get("Arn", "").startswith("arn:aws:sts::123456789012:assumed-role/")
        names[package["ModelPackageArn"]] = principal_names(created_by)
    churn_v5 = seeded.packages["churn-propensity"][4]
    assert "mlead" in names[churn_v5]
    described = sagemaker().describe_model_package(ModelPackageName=churn_v5)
    assert described["CreatedBy"]["UserProfileName"] == "mlead"
    assert described["ModelApprovalStatus"] == demo_seed.PENDING
    studio = {n[0] for n in names.values() if n and n[0] != "SageMaker"}
    assert {"mlead", "lena-fischer", "sofia-rossi", "tom-okafor"} <= studio  # Studio users, not one placeholder
    approved = sagemaker().describe_model_package(ModelPackageName=seeded.packages["fraud-detector"][2])
    assert approved["LastModifiedBy"]["IamIdentity"]["SourceIdentity"] == "fairness"


def test_cloudtrail_registrations_match_the_registry(seeded: SeedSummary) -> None:
    import datetime as dt

    ctx = demo_seed._Context(
        rng=None,  # type: ignore[arg-type]
        account="123456789012",
        regions={False: REGION, True: SECOND},
        buckets={False: BUCKET, True: f"{BUCKET}-{SECOND}"},
        summary=SeedSummary(account_id="123456789012", regions=(REGION, SECOND), buckets=()),
        arns={(g, i + 1): arn for g, arns in seeded.packages.items() for i, arn in enumerate(arns)},
    )
    anchor = max(seeded.created_at.values()) + dt.timedelta(hours=20)  # house-price v4: 20 h before the anchor
    records = demo_seed.cloudtrail_records(ctx, anchor.replace(second=0, microsecond=0))
    creates = [r for _, r in records if r["eventName"] == "CreateModelPackage"]
    assert len(creates) == seeded.package_count
    churn_v5 = next(
        r for r in creates if r["responseElements"]["modelPackageArn"] == seeded.packages["churn-propensity"][4]
    )
    assert churn_v5["userIdentity"]["sessionContext"]["sourceIdentity"] == "mlead"
