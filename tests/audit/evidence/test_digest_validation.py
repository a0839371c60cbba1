"""CloudTrail digest validation in the S3 ingest: digests signed with a generated key whose public half
the AWS fake's ListPublicKeys returns; tampered, injected and unlisted log files, missing and changed
digests, the wrong key; the verdict on each event wherever it is shown; the alert and the audit entry."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from registry_app.audit.alerts import alert_evidence_failures
from registry_app.audit.validation import event_validation
from registry_app.models import AuditLogEntry, CloudTrailEvent, ModelPackage, RegistrySource, TrailDigest, TrailLogFile
from tests.audit.evidence.conftest import hours_ago, ingest
from tests.audit.evidence.signed_trail import SignedTrail, signing_key
from tests.audit.ingest import records as r
from tests.factories import ModelPackageFactory, ModelPackageGroupFactory
from tests.personas import make_user

pytestmark = pytest.mark.django_db

MIN = dt.timedelta(minutes=1)


def file_state(key: str) -> tuple[str, str]:
    row = TrailLogFile.objects.get(key=key)
    return row.state, row.reason


def states_of_events() -> dict[str, str]:
    return {e.event_id: event_validation(e).state for e in CloudTrailEvent.objects.select_related("trail_file")}


@pytest.fixture
def package(source: RegistrySource) -> ModelPackage:
    group = ModelPackageGroupFactory(source=source, name="credit-risk")
    return ModelPackageFactory(group=group, version=3)


def test_files_listed_in_an_authentic_digest_are_validated(source: RegistrySource, signed: SignedTrail) -> None:
    t = hours_ago(6)
    first = signed.deliver([r.approve("credit-risk", 3, when=t)], t, "A" * 16)
    second = signed.deliver([r.create_package("credit-risk", 4, when=t)], t + 10 * MIN, "B" * 16)
    signed.digest(t + 30 * MIN, start=t - 30 * MIN)

    result = ingest(source)

    assert not result.s3.errors and result.s3.inserted == 2
    assert file_state(first) == ("validated", "") and file_state(second) == ("validated", "")
    assert set(states_of_events().values()) == {"validated"}
    digest = TrailDigest.objects.get()
    assert (digest.state, digest.chain, digest.log_files) == ("valid", "start", 2)
    assert result.aws_calls["ListPublicKeys"] == 1


def test_a_file_without_its_digest_yet_is_shown_so(source: RegistrySource, signed: SignedTrail) -> None:
    t = hours_ago(1)
    key = signed.deliver([r.approve("credit-risk", 3, when=t)], t, "A" * 16)

    ingest(source)

    assert file_state(key) == ("pending", "")
    (event,) = CloudTrailEvent.objects.select_related("trail_file")
    assert event_validation(event).text == "no digest yet"
    # The digest arrives an hour later: the next run validates the file without reading it again.
    signed.digest(t + 40 * MIN, start=t - 20 * MIN)
    again = ingest(source)
    assert file_state(key) == ("validated", "") and "GetObject" in again.aws_calls
    assert TrailLogFile.objects.get(key=key).read_at is not None


def test_a_tampered_log_file_fails_and_is_flagged_on_its_package_timeline(
    source: RegistrySource, signed: SignedTrail, package: ModelPackage, settings: Any
) -> None:
    settings.SITE_URL = "https://governance.example"
    staff = make_user("stan", is_staff=True)
    t = hours_ago(5)
    honest = [r.approve("credit-risk", 3, "Rejected", when=t)]
    key = signed.deliver(honest, t, "A" * 16)
    signed.digest(t + 30 * MIN, start=t - 30 * MIN)
    # After delivery, someone with write access to the bucket flips the decision in the log file.
    signed.tamper(key, [r.approve("credit-risk", 3, "Approved", when=t)])

    ingest(source)

    state, reason = file_state(key)
    assert state == "failed" and "the file was changed" in reason
    (event,) = CloudTrailEvent.objects.select_related("trail_file")
    assert event.package_id == package.pk and event_validation(event).state == "failed"
    entries = AuditLogEntry.objects.filter(action="cloudtrail.validation_failed")
    assert [(e.package_id, e.subject_id) for e in entries] == [(package.pk, str(event.trail_file_id))]
    # The package's timeline shows the call and its failed validation, and the failure entry.
    client = Client()
    client.force_login(make_user("connie", "compliance"))
    page = client.get("/packages/credit-risk/3/audit/").content.decode()
    assert "validation failed: the file was changed" in page
    assert "cloudtrail.validation_failed" in page
    # Staff are e-mailed once.
    assert alert_evidence_failures() == 1 and alert_evidence_failures() == 0
    (message,) = mail.outbox
    assert message.to == [staff.email] and key in message.body


def test_a_file_read_before_its_digest_and_changed_later_keeps_its_verdict(
    source: RegistrySource, signed: SignedTrail
) -> None:
    """We stored the authentic content: a later change in S3 does not change our evidence, and a re-read
    of the changed file (``--since``) is caught."""
    t = hours_ago(5)
    original = r.approve("credit-risk", 3, when=t)
    key = signed.deliver([original], t, "A" * 16)
    ingest(source)
    signed.tamper(key, [original, r.approve("credit-risk", 9, when=t)])  # an event slipped in
    signed.digest(t + 30 * MIN, start=t - 30 * MIN)  # records the hash of the file as delivered

    ingest(source)
    assert file_state(key) == ("validated", "")

    ingest(source, since=t.date())  # an operator re-reads the day: the file's content is not what we read
    state, reason = file_state(key)
    assert state == "failed" and "changed after it was first read" in reason
    assert CloudTrailEvent.objects.count() == 2 and set(states_of_events().values()) == {"failed"}


def test_an_injected_log_file_no_digest_lists_fails(source: RegistrySource, signed: SignedTrail) -> None:
    t = hours_ago(6)
    genuine = signed.deliver([r.approve("credit-risk", 3, when=t)], t, "A" * 16)
    signed.digest(t + 30 * MIN, start=t - 30 * MIN)
    injected = r.log_key(t + 5 * MIN, "Z" * 16)
    signed.s3.put_object(Bucket=signed.bucket, Key=injected, Body=r.gz([r.approve("credit-risk", 5, when=t)]))

    ingest(source)

    assert file_state(genuine) == ("validated", "")
    state, reason = file_state(injected)
    assert state == "failed" and "not listed in the digest of its delivery hour" in reason


def test_a_deleted_digest_breaks_the_chain_and_its_files_fail(source: RegistrySource, signed: SignedTrail) -> None:
    t = hours_ago(8)
    keys = []
    for hour in range(3):
        at = t + dt.timedelta(hours=hour)
        keys.append(signed.deliver([r.approve("credit-risk", hour + 1, when=at)], at, f"{hour}" * 16))
        signed.digest(at + 30 * MIN, start=at - 30 * MIN)
    middle = signed.digests[1][0]
    signed.delete(middle)

    ingest(source)

    last = TrailDigest.objects.get(key=signed.digests[2][0])
    assert (last.state, last.chain) == ("valid", "broken") and "is missing (deleted)" in last.reason
    assert AuditLogEntry.objects.filter(action="cloudtrail.digest_chain_broken").count() == 1
    assert file_state(keys[0])[0] == file_state(keys[2])[0] == "validated"
    state, reason = file_state(keys[1])
    assert state == "failed" and "digest of its delivery hour is missing" in reason


def test_a_changed_previous_digest_breaks_the_chain(source: RegistrySource, signed: SignedTrail) -> None:
    t = hours_ago(8)
    signed.digest(t, start=t - 60 * MIN)
    first_key, first_signature, _, _ = signed.digests[0]
    # The next digest records a hash of the previous one that is not the stored file's.
    signed.digest(t + 60 * MIN, previous=(first_key, first_signature, "0" * 64))

    ingest(source)

    second = TrailDigest.objects.get(key=signed.digests[1][0])
    assert second.chain == "broken" and "was changed" in second.reason


def test_a_digest_signed_with_another_key_fails_with_its_files(source: RegistrySource, signed: SignedTrail) -> None:
    t = hours_ago(6)
    key = signed.deliver([r.approve("credit-risk", 3, when=t)], t, "A" * 16)
    forged = signed.digest(t + 30 * MIN, start=t - 30 * MIN, key=signing_key(1))  # its fingerprint is not listed

    ingest(source)

    digest = TrailDigest.objects.get(key=forged)
    assert digest.state == "failed" and "is not one of the Region's CloudTrail keys" in digest.reason
    state, reason = file_state(key)
    assert state == "failed" and "is not authentic" in reason
    assert AuditLogEntry.objects.filter(action="cloudtrail.digest_failed").count() == 1


def test_a_signature_by_a_key_other_than_the_one_named_fails(source: RegistrySource, signed: SignedTrail) -> None:
    t = hours_ago(6)
    signed.deliver([r.approve("credit-risk", 3, when=t)], t, "A" * 16)
    forged = signed.digest(t + 30 * MIN, start=t - 30 * MIN, key=signing_key(1))
    # Re-label it with the genuine key's fingerprint: the signature still does not verify.
    plain = signed.digests[-1][3].replace(signing_key(1).fingerprint.encode(), signed.key.fingerprint.encode())
    signed.put_digest(forged, plain, signed.digests[-1][1])

    ingest(source)

    assert TrailDigest.objects.get(key=forged).reason == "signature verification failed"


def test_digests_are_checked_again_when_the_keys_could_not_be_listed(
    source: RegistrySource, signed: SignedTrail, monkeypatch: pytest.MonkeyPatch
) -> None:
    from registry_app.aws.cloudtrail import CloudTrailReader
    from registry_app.aws.errors import AccessDeniedError

    t = hours_ago(6)
    key = signed.deliver([r.approve("credit-risk", 3, when=t)], t, "A" * 16)
    signed.digest(t + 30 * MIN, start=t - 30 * MIN)

    def denied(self: CloudTrailReader, start: dt.datetime, end: dt.datetime) -> Any:
        raise AccessDeniedError("not authorized to perform: cloudtrail:ListPublicKeys", code="AccessDeniedException")

    monkeypatch.setattr(CloudTrailReader, "list_public_keys", denied)
    first = ingest(source)
    assert TrailDigest.objects.get().state == "unchecked" and file_state(key) == ("pending", "")
    assert any("ListPublicKeys" in error for error in first.s3.errors)

    monkeypatch.undo()
    ingest(source)
    assert TrailDigest.objects.get().state == "valid" and file_state(key) == ("validated", "")


def test_an_event_first_stored_from_lookup_events_gets_its_file(source: RegistrySource, signed: SignedTrail) -> None:
    from registry_app.audit.ingest_linker import Linker
    from registry_app.audit.ingest_writer import store_records

    t = hours_ago(6)
    record = r.approve("credit-risk", 3, when=t)
    store_records(source, [record], via=CloudTrailEvent.Via.LOOKUP, linker=Linker(source), fallback_time=t)
    (event,) = CloudTrailEvent.objects.select_related("trail_file")
    assert event_validation(event).state == "lookup"
    key = signed.deliver([record], t, "A" * 16)
    signed.digest(t + 30 * MIN, start=t - 30 * MIN)

    result = ingest(source)

    assert result.s3.inserted == 0 and result.s3.duplicates == 1
    (event,) = CloudTrailEvent.objects.select_related("trail_file")
    assert event.trail_file.key == key and event_validation(event).state == "validated"


def test_without_digest_validation_no_file_rows_are_written(
    source: RegistrySource, signed: SignedTrail, settings: Any
) -> None:
    settings.AUDIT_DIGEST_VALIDATION = False
    t = hours_ago(6)
    signed.deliver([r.approve("credit-risk", 3, when=t)], t, "A" * 16)
    signed.digest(t + 30 * MIN, start=t - 30 * MIN)

    result = ingest(source)

    assert result.s3.inserted == 1 and "ListPublicKeys" not in result.aws_calls
    assert not TrailLogFile.objects.exists() and not TrailDigest.objects.exists()
    (event,) = CloudTrailEvent.objects.select_related("trail_file")
    assert event_validation(event).state == "unchecked"


def test_exports_and_packs_carry_each_call_s_validation(
    source: RegistrySource, signed: SignedTrail, package: ModelPackage
) -> None:
    import io
    import json
    import zipfile

    t = hours_ago(6)
    signed.deliver([r.approve("credit-risk", 3, when=t)], t, "A" * 16)
    signed.digest(t + 30 * MIN, start=t - 30 * MIN)
    later = hours_ago(1)
    signed.deliver([r.approve("credit-risk", 3, "Rejected", when=later)], later, "B" * 16)  # no digest yet
    ingest(source)
    client = Client()
    client.force_login(make_user("connie", "compliance"))

    csv_text = b"".join(client.get("/packages/credit-risk/3/audit/?format=csv").streaming_content).decode()
    header, *rows = csv_text.splitlines()
    assert "validation" in header.split(",")
    assert sum("validated" in row for row in rows) == 1 and sum("no digest yet" in row for row in rows) == 1

    pack = client.get("/packages/credit-risk/3/audit/pack.zip")
    with zipfile.ZipFile(io.BytesIO(b"".join(pack.streaming_content))) as archive:
        validation = json.loads(archive.read("cloudtrail_validation.json"))
        chain = json.loads(archive.read("audit_chain.json"))
    assert sorted(row["state"] for row in validation) == ["pending", "validated"]
    assert all(row["file"].startswith(f"s3://{signed.bucket}/AWSLogs/") for row in validation)
    assert chain["anchor"]["matches_head"] is True and chain["anchor"]["written"] is True
