"""The audit chain's head anchored outside the database (a local file, or S3 objects) and verify_audit
checking the chain against it: a deleted tail, a rewritten tail, the alert, the metrics, /readyz."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import boto3
import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from registry_app.audit.anchors import anchor_head, anchor_store
from registry_app.audit.log import audit_append
from registry_app.audit.verification import verify_audit
from registry_app.models import AuditAnchor, AuditLogEntry, AuditVerification
from registry_app.ops.metrics import GovernanceCollector
from tests.personas import make_user

pytestmark = pytest.mark.django_db

TABLE = AuditLogEntry._meta.db_table


def append(n: int) -> list[AuditLogEntry]:
    return [audit_append("test.entry", via=AuditLogEntry.Via.COMMAND, message=f"entry {i}") for i in range(n)]


def delete_from(seq: int) -> None:
    """What someone with database access would do: raw SQL, no signal, no guard."""
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq >= %s", [seq])


def run_command(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("verify_audit", *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue() + str(exc)
    return 0, out.getvalue()


def test_an_anchor_is_written_to_the_log_and_the_local_file(audit_anchor_file: str, caplog: Any) -> None:
    entries = append(3)
    caplog.set_level("INFO", logger="registry_app.audit.anchor")

    row = anchor_head()

    assert (row.seq, row.hash, row.error) == (3, entries[-1].hash, "")
    (line,) = Path(audit_anchor_file).read_text().splitlines()
    assert json.loads(line)["seq"] == 3 and json.loads(line)["hash"] == entries[-1].hash
    (record,) = [rec for rec in caplog.records if rec.name == "registry_app.audit.anchor"]
    assert record.audit_anchor["seq"] == 3  # the structured log's copy (a JSON field with LOG_FORMAT=json)


def test_verify_audit_detects_a_deleted_tail_against_the_anchor() -> None:
    append(5)
    anchor_head()
    assert run_command()[0] == 0
    delete_from(4)  # entries #4 and #5 vanish: what is left is a valid, shorter chain

    code, output = run_command("--no-alert")

    assert code == 1
    assert "truncated" in output and "first missing or changed entry #4" in output
    assert "entries #4–#5 were deleted" in output
    last = AuditVerification.objects.latest("started_at")
    assert (last.ok, last.problem, last.first_bad_seq, last.head_seq, last.anchor_seq) == (False, "truncated", 4, 3, 5)


def test_a_tail_deleted_and_written_again_is_reported_as_rewritten() -> None:
    append(3)
    anchor_head()
    append(2)
    anchor_head()
    delete_from(4)
    append(3)  # new entries #4..#6 take the deleted ones' numbers (and more)

    result = verify_audit(alert=False)

    assert not result.ok and result.problem == "rewritten" and result.first_bad_seq == 4
    assert "newest anchor still matching is #3" in result.detail


def test_entries_newer_than_the_anchor_are_fine() -> None:
    append(2)
    anchor_head()
    append(4)

    result = verify_audit(alert=False)

    assert result.ok and result.anchor_seq == 2 and result.head_seq == 6


def test_anchors_lost_from_the_store_are_reported(audit_anchor_file: str) -> None:
    append(2)
    anchor_head()
    Path(audit_anchor_file).unlink()

    result = verify_audit(alert=False)

    assert not result.ok and result.problem == "no_anchor" and "none can be read" in result.detail


def test_a_failed_verification_emails_staff_once(settings: Any) -> None:
    staff = make_user("stan", is_staff=True)
    make_user("vera", "viewer")
    append(3)
    anchor_head()
    delete_from(2)

    failed = verify_audit(trigger="schedule")

    (message,) = mail.outbox
    assert message.to == [staff.email] and "Audit log check FAILED" in message.subject
    assert "First missing or changed entry: #2" in message.body
    failed.refresh_from_db()
    assert failed.notified_at is not None
    from registry_app.audit.alerts import alert_verification

    assert not alert_verification(failed.pk) and len(mail.outbox) == 1  # claimed: never sent twice


def test_s3_anchors_are_objects_and_verify_reads_the_newest_back(aws: None, settings: Any) -> None:
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(
        Bucket="acme-audit-anchor",
        CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
        ObjectLockEnabledForBucket=True,
    )
    s3.put_object_lock_configuration(
        Bucket="acme-audit-anchor",
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 400}},
        },
    )
    settings.AUDIT_ANCHOR_S3_URI = "s3://acme-audit-anchor/governance/"
    settings.AUDIT_ANCHOR_REGION = "eu-west-1"
    append(2)
    first = anchor_head()
    append(1)
    second = anchor_head()

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="acme-audit-anchor")["Contents"]]
    assert len(keys) == 2 and all(k.startswith("governance/0000000000000000000") for k in keys)
    assert first.location.startswith("s3://acme-audit-anchor/governance/") and second.error == ""
    assert anchor_store().protection() == "S3 Object Lock COMPLIANCE 400 days"
    delete_from(3)

    code, output = run_command("--no-alert")

    assert code == 1 and "entry #3 was deleted" in output and "first missing or changed entry #3" in output
    assert "S3 Object Lock COMPLIANCE 400 days" in output


def test_an_unwritable_store_is_recorded_and_logged_not_raised(aws: None, settings: Any) -> None:
    settings.AUDIT_ANCHOR_S3_URI = "s3://no-such-anchor-bucket/audit/"
    append(1)

    row = anchor_head()

    assert row.error and "NoSuchBucket" in row.error and row.seq == 1


def test_metrics_show_the_anchor_age_and_the_last_verification() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    append(2)
    anchor_head()
    delete_from(2)
    verify_audit(alert=False)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GovernanceCollector())
    text = generate_latest(registry).decode()

    assert "governance_audit_anchor_age_seconds " in text
    assert "governance_audit_verification_ok 0.0" in text
    assert 'governance_scrape_error{part="evidence"} 0.0' in text
    # /readyz stays green: a broken audit chain is for staff to act on, not a reason to stop serving.
    from registry_app.ops.health import check_audit_evidence

    check = check_audit_evidence()
    assert check.ok and "FAILED (truncated)" in check.detail


def test_every_auditor_export_anchors_the_head(personas: dict[str, Any]) -> None:
    from tests.audit.conftest import client_for

    append(2)
    client = client_for(make_user("connie", "compliance"))

    response = client.get("/audit/pack.zip")  # the last 30 days

    assert response.status_code == 200
    anchor = AuditAnchor.objects.get()
    assert (anchor.reason, anchor.seq) == ("export", AuditLogEntry.objects.order_by("-seq").first().seq)
