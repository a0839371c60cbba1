"""The audit log's hash chain: appends, the append-only guards, and verify_audit on tampered rows."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from registry_app.audit.chain import GENESIS_HASH, canonical_content, verify_audit_chain
from registry_app.audit.log import AuditLogImmutable, audit_append
from registry_app.models import AuditLogEntry, ModelPackage
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TABLE = AuditLogEntry._meta.db_table


def _fill(package: ModelPackage, n: int = 6) -> list[AuditLogEntry]:
    actor = UserFactory(username="carol")
    return [
        audit_append(
            f"test.action{i}",
            actor=actor if i % 2 else "pipeline-bot",
            via=AuditLogEntry.Via.WEB if i % 2 else AuditLogEntry.Via.TASK,
            subject=package,
            package=package,
            before={"status": "PendingManualApproval", "n": i},
            after={"status": "Approved", "score": 0.1 * i, "big": 1e20, "nan": float("nan"), "text": "é\x00"},
            message=f"entry {i}",
            correlation_id=f"req-{i}",
        )
        for i in range(1, n + 1)
    ]


def _verify() -> tuple[int, str]:
    """(exit code, output) of the verify_audit command."""
    try:
        from io import StringIO

        out = StringIO()
        call_command("verify_audit", stdout=out)
        return 0, out.getvalue()
    except CommandError as exc:
        return exc.returncode, str(exc)


def test_entries_chain_from_genesis(package: ModelPackage) -> None:
    entries = _fill(package)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5, 6]
    assert entries[0].prev_hash == GENESIS_HASH
    for before, after in zip(entries, entries[1:], strict=False):
        assert after.prev_hash == before.hash
    first = AuditLogEntry.objects.get(seq=1)
    document = {"entry": canonical_content(first), "prev_hash": GENESIS_HASH}
    payload = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert hashlib.sha256(payload.encode()).hexdigest() == first.hash
    assert first.actor_name == "carol" and first.actor_id is not None
    second = AuditLogEntry.objects.get(seq=2)
    assert second.actor_name == "pipeline-bot" and second.actor_id is None
    # read back from the database, every row still verifies
    report = verify_audit_chain()
    assert report.ok and report.checked == 6 and report.head_seq == 6
    code, output = _verify()
    assert code == 0 and "6 entries" in output


def test_empty_log_verifies(db: None) -> None:
    code, output = _verify()
    assert code == 0 and "Audit chain OK: the log is empty." in output


def test_app_cannot_update_or_delete(package: ModelPackage) -> None:
    from django.db import transaction

    entry = _fill(package, 2)[0]
    entry.message = "rewritten"
    # Each refusal aborts the transaction it happens in (a savepoint here, so the test can go on).
    with pytest.raises(AuditLogImmutable), transaction.atomic():
        entry.save()
    with pytest.raises(AuditLogImmutable), transaction.atomic():
        entry.delete()
    with pytest.raises(AuditLogImmutable), transaction.atomic():
        AuditLogEntry.objects.filter(seq=2).delete()
    assert AuditLogEntry.objects.count() == 2
    assert verify_audit_chain().ok


def test_edited_entry_is_named(package: ModelPackage) -> None:
    _fill(package)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET message = %s WHERE seq = %s", ["nothing happened here", 4])
    report = verify_audit_chain()
    assert report.problem is not None
    assert (report.problem.seq, report.problem.kind) == (4, "edited")
    assert report.problem.entry_id == AuditLogEntry.objects.get(seq=4).pk
    assert report.checked == 3
    code, output = _verify()
    assert code == 1
    assert "entry #4" in output and "edited" in output


def test_edited_json_is_detected(package: ModelPackage) -> None:
    _fill(package)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET actor_name = %s WHERE seq = %s", ["mallory", 2])
    problem = verify_audit_chain().problem
    assert problem is not None and (problem.seq, problem.kind) == (2, "edited")


def test_deleted_entry_is_named(package: ModelPackage) -> None:
    _fill(package)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq = %s", [3])
    problem = verify_audit_chain().problem
    assert problem is not None
    assert (problem.seq, problem.kind) == (3, "missing")
    assert problem.entry_id == AuditLogEntry.objects.get(seq=4).pk
    code, output = _verify()
    assert code == 1 and "#3 are missing before entry #4" in output


def test_reordered_entries_are_named(package: ModelPackage) -> None:
    entries = _fill(package)
    third, fourth = entries[2], entries[3]
    with connection.cursor() as cursor:  # swap seq 3 and 4 (through a spare value: seq is unique)
        cursor.execute(f"UPDATE {TABLE} SET seq = %s WHERE id = %s", [999999, third.pk])
        cursor.execute(f"UPDATE {TABLE} SET seq = %s WHERE id = %s", [3, fourth.pk])
        cursor.execute(f"UPDATE {TABLE} SET seq = %s WHERE id = %s", [4, third.pk])
    problem = verify_audit_chain().problem
    assert problem is not None
    assert (problem.seq, problem.entry_id, problem.kind) == (3, fourth.pk, "reordered")
    code, output = _verify()
    assert code == 1 and f"entry #3 (id {fourth.pk})" in output and "reordered" in output


def test_append_inside_rolled_back_transaction_leaves_no_gap(package: ModelPackage) -> None:
    from django.db import transaction

    _fill(package, 2)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        audit_append("doomed", via=AuditLogEntry.Via.WEB, package=package)
        raise Boom
    entry = audit_append("after", via=AuditLogEntry.Via.WEB)
    assert entry.seq == 3
    assert verify_audit_chain().ok


def test_created_at_never_goes_backwards(package: ModelPackage, monkeypatch: Any) -> None:
    import datetime as dt

    from django.utils import timezone

    first = audit_append("first", via=AuditLogEntry.Via.WEB)
    earlier = first.created_at - dt.timedelta(hours=1)
    monkeypatch.setattr(timezone, "now", lambda: earlier)
    second = audit_append("second", via=AuditLogEntry.Via.WEB)
    assert second.created_at == first.created_at
    assert verify_audit_chain().ok


def test_unknown_via_is_refused(db: None) -> None:
    with pytest.raises(ValueError):
        audit_append("x", via="carrier-pigeon")
