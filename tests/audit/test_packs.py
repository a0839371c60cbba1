"""Auditor packs: one zip per package version or period, with a README manifest of SHA-256 hashes."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile

import pytest
from django.http import FileResponse
from django.test import Client
from django.urls import reverse

from registry_app.audit.log import audit_append
from registry_app.models import Finding, ModelPackage, PushOutbox
from tests.audit.builders import at, cloudtrail, decision, deployment, observe, push, signoff, status_call
from tests.audit.conftest import make_user
from tests.factories import EvaluationReportFactory, MetricFactory, ModelCardFactory

pytestmark = pytest.mark.django_db


def _zip(response: FileResponse) -> zipfile.ZipFile:
    assert isinstance(response, FileResponse)
    assert response["Content-Type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def _manifest(archive: zipfile.ZipFile) -> dict[str, str]:
    readme = archive.read("README.txt").decode()
    section = readme.split("sha256sum format:", 1)[1]
    return {name: sha for sha, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", section, re.M)}


@pytest.fixture
def reviewed(package: ModelPackage) -> ModelPackage:
    card = ModelCardFactory(source=package.source, name="credit-risk-card", version=4, content_hash="c" * 64)
    package.model_card = card
    package.save(update_fields=["model_card"])
    report = EvaluationReportFactory(package=package, slot="ModelQuality.Statistics")
    MetricFactory(report=report, name="auc", value=0.91)
    MetricFactory(report=report, name="=cmd", value=1.0)
    carol = make_user("carol", "ml-lead")
    signoff(package, carol, "ml-lead", at(1))
    made = decision(package, "Approved", at(2), carol)
    push(package, "Approved", at(2), sent=at(2.1), decision_row=made)
    push(package, "Approved", at(2.2), state=PushOutbox.State.CONFLICT)
    status_call(package, "Approved", at(2.1), actor="carol")
    observe(package, at(2.2), {"approval_status": ["PendingManualApproval", "Approved"]})
    deployment("credit-prod", package, at(3))
    audit_append("signoff.recorded", actor=carol, via="web", package=package, message="signed")
    Finding.objects.create(
        package=package, group=package.group, title="=HYPERLINK(1)", severity="high", raised_by=carol, raised_at=at(1.5)
    )
    return package


def test_package_pack_contents_and_manifest(reviewed: ModelPackage, compliance_client: Client) -> None:
    url = reverse("registry:package_audit_pack", args=[reviewed.group.name, reviewed.version])
    response = compliance_client.get(url)
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"] and ".zip" in response["Content-Disposition"]
    archive = _zip(response)
    names = set(archive.namelist())
    expected = {
        "README.txt",
        "package.json",
        "model_card.json",
        "evaluation_reports/01_ModelQuality.Statistics.json",
        "evaluation_reports/index.json",
        "evaluation_reports/metrics.csv",
        "signoffs.json",
        "signoffs.csv",
        "decisions.json",
        "pushes.json",
        "outside_decisions.json",
        "deployments.json",
        "findings.json",
        "findings.csv",
        "timeline.csv",
        "timeline.json",
        "cloudtrail.json",
        "cloudtrail_validation.json",
        "audit_log.json",
        "audit_chain.json",
    }
    assert names == expected
    manifest = _manifest(archive)
    assert set(manifest) == expected - {"README.txt"}
    for name, sha in manifest.items():
        assert hashlib.sha256(archive.read(name)).hexdigest() == sha, name

    card = json.loads(archive.read("model_card.json"))
    assert (card["origin"], card["name"], card["version"]) == ("standalone", "credit-risk-card", 4)
    assert card["content"]["model_overview"]["model_owner"] == "team-risk"
    assert len(card["reviewed_by"]) == 1
    signoffs = json.loads(archive.read("signoffs.json"))
    assert signoffs[0]["fingerprint"] == "f" * 64 and signoffs[0]["role"] == "ml-lead"
    metrics = list(csv.DictReader(io.StringIO(archive.read("evaluation_reports/metrics.csv").decode())))
    assert {m["name"] for m in metrics} == {"auc", "'=cmd"}
    pushes = json.loads(archive.read("pushes.json"))
    assert sorted(p["state"] for p in pushes) == ["conflict", "sent"]
    records = json.loads(archive.read("cloudtrail.json"))["Records"]
    assert [r["eventName"] for r in records] == ["UpdateModelPackage"]
    timeline = json.loads(archive.read("timeline.json"))
    assert {item["kind"] for item in timeline} >= {"signoff", "decision", "push", "cloudtrail", "deployment", "audit"}
    chain = json.loads(archive.read("audit_chain.json"))
    assert chain["ok"] is True and chain["head_hash"]
    findings = json.loads(archive.read("findings.json"))
    assert [(f["title"], f["severity"], f["state"], f["raised_by"]) for f in findings] == [
        ("=HYPERLINK(1)", "high", "open", "carol")
    ]
    rows = list(csv.DictReader(io.StringIO(archive.read("findings.csv").decode())))
    assert rows[0]["title"] == "'=HYPERLINK(1)"  # no formula in a spreadsheet
    readme = archive.read("README.txt").decode()
    assert reviewed.arn in readme and "connie" in readme


def test_period_pack(reviewed: ModelPackage, staff_client: Client) -> None:
    cloudtrail("CreateEndpoint", at(-24 * 30), endpoint_name="old-endpoint")  # outside the period
    response = staff_client.get(reverse("registry:audit_period_pack"), {"since": "2025-03-09", "until": "2025-03-11"})
    archive = _zip(response)
    manifest = _manifest(archive)
    assert set(manifest) == set(archive.namelist()) - {"README.txt"}
    for name, sha in manifest.items():
        assert hashlib.sha256(archive.read(name)).hexdigest() == sha, name
    records = json.loads(archive.read("cloudtrail.json"))["Records"]
    assert [r["eventName"] for r in records] == ["UpdateModelPackage"]
    assert len(json.loads(archive.read("signoffs.json"))) == 1
    assert len(json.loads(archive.read("deployments.json"))) == 1
    assert [f["ref"] for f in json.loads(archive.read("findings.json"))] == [f"F-{Finding.objects.get().pk}"]
    assert json.loads(archive.read("period.json"))["since"].startswith("2025-03-09")


def test_period_pack_validates_the_period(staff_client: Client) -> None:
    url = reverse("registry:audit_period_pack")
    assert staff_client.get(url, {"since": "2025-03-10", "until": "2025-03-01"}).status_code == 400
    assert staff_client.get(url, {"since": "2020-01-01", "until": "2025-03-01"}).status_code == 400
    assert staff_client.get(url).status_code == 200  # the last 30 days by default
