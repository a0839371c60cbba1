"""Audit evidence as readable fields (CloudTrail's usual ones first, bookkeeping left out) plus raw JSON."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.urls import reverse

from registry_app.audit.evidence_fields import MAX_VALUE, evidence_fields
from tests.audit.builders import cloudtrail

pytestmark = pytest.mark.django_db

RECORD = {
    "eventVersion": "1.08",
    "eventID": "e1",
    "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/R/carol", "principalId": "X"},
    "eventTime": "2025-03-10T12:00:00Z",
    "eventName": "UpdateModelPackage",
    "requestParameters": {"modelPackageArn": "arn:aws:sagemaker:eu-west-1:1:model-package/g/1", "tags": ["a", "b"]},
    "responseElements": None,
    "readOnly": False,
}


def test_fields_first_and_noise_left_out() -> None:
    fields, more = evidence_fields(RECORD)
    keys = [key for key, _ in fields]
    assert keys[:3] == ["eventName", "eventTime", "userIdentity.arn"]
    assert "requestParameters.modelPackageArn" in keys and ("requestParameters.tags", "a, b") in fields
    assert "eventVersion" not in keys and "readOnly" not in keys and "responseElements" not in keys
    assert more == 0


def test_long_values_and_many_fields_are_cut() -> None:
    fields, more = evidence_fields({f"k{i}": "x" * 1000 for i in range(20)}, limit=5)
    assert len(fields) == 5 and more == 15
    assert all(len(value) == MAX_VALUE and value.endswith("…") for _, value in fields)
    assert evidence_fields("plain") == ([("value", "plain")], 0)
    assert evidence_fields(None) == ([], 0)
    deep = evidence_fields({"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}})[0]
    assert deep == [("a.b.c.d", '{"e": {"f": 1}}')]


def test_audit_page_shows_a_definition_list_and_escapes(viewer_client: Client) -> None:
    event = cloudtrail(
        "UpdateModelPackage",
        dt.datetime(2025, 3, 10, 12, tzinfo=dt.UTC),
        actor="carol",
        request={"modelApprovalStatus": "<script>alert(1)</script>"},
    )
    body = viewer_client.get(reverse("registry:audit_search")).content.decode()
    assert '<dl class="evidence-fields">' in body and "<dt>eventName</dt>" in body
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;" in body
    assert re.search(r'<summary><code class="mono">cloudtrail:[^<]+</code></summary>', body)
    assert event.event_id in body
