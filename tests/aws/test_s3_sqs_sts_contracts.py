"""Contract tests of the S3, SQS and STS calls (reports, trail files, events, identity, roles)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import pytest
from botocore.response import StreamingBody

from registry_app.aws.cloudtrail import CloudTrailReader
from registry_app.aws.errors import FinalAwsError
from registry_app.aws.sagemaker import RegistryClient, ReportTooLarge
from registry_app.aws.session import SourceConfig
from tests.aws.contracts import ACCOUNT, REGION, Stubs, contract

REPORT = b'{"regression_metrics": {"mse": {"value": 3.2}}}'
QUEUE = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/registry-events"


def body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


@contract("s3", "GetObject")
def test_a_report_is_fetched_with_a_capped_range(client: RegistryClient, stubs: Stubs) -> None:
    expected = {"Bucket": "ml-artifacts", "Key": "credit-risk/3/evaluation.json", "Range": "bytes=0-1024"}
    response = {
        "Body": body(REPORT),
        "ContentLength": len(REPORT),
        "ContentRange": f"bytes 0-{len(REPORT) - 1}/{len(REPORT)}",
    }
    stubs.ok("s3", "GetObject", response, expected)
    big = {"Body": body(b"x" * 1025), "ContentLength": 1025, "ContentRange": "bytes 0-1024/50000"}
    stubs.ok("s3", "GetObject", big, expected)

    fetched = client.get_object("s3://ml-artifacts/credit-risk/3/evaluation.json", max_bytes=1024)

    assert fetched.body == REPORT and fetched.size == len(REPORT)
    with pytest.raises(ReportTooLarge):
        client.get_object("s3://ml-artifacts/credit-risk/3/evaluation.json", max_bytes=1024)


@contract("s3", "GetObject")
def test_an_empty_report_is_empty_bytes_not_a_fetch_error(client: RegistryClient, stubs: Stubs) -> None:
    """Fails on the old code: S3 answers a ranged GET of a 0-byte object with HTTP 416
    InvalidRange (ActualObjectSize 0), which was a fetch error; it is an empty report."""
    expected = {"Bucket": "ml-artifacts", "Key": "empty.json", "Range": "bytes=0-1024"}
    meta = {"ActualObjectSize": "0", "RangeRequested": "bytes=0-1024"}
    stubs.error(
        "s3",
        "GetObject",
        "InvalidRange",
        "The requested range is not satisfiable",
        status=416,
        expected=expected,
        error_meta=meta,
    )

    fetched = client.get_object("s3://ml-artifacts/empty.json", max_bytes=1024)

    assert fetched.body == b"" and fetched.size == 0 and fetched.sha256 == hashlib.sha256(b"").hexdigest()


@contract("s3", "GetObject")
def test_a_range_refused_for_a_non_empty_object_stays_an_error(client: RegistryClient, stubs: Stubs) -> None:
    expected = {"Bucket": "ml-artifacts", "Key": "odd.json", "Range": "bytes=0-1024"}
    stubs.error(
        "s3",
        "GetObject",
        "InvalidRange",
        "The requested range is not satisfiable",
        status=416,
        expected=expected,
        error_meta={"ActualObjectSize": "12"},
    )

    with pytest.raises(FinalAwsError):
        client.get_object("s3://ml-artifacts/odd.json", max_bytes=1024)


@contract("s3", "ListObjectsV2", "GetObject")
def test_trail_files_are_listed_and_read(reader: CloudTrailReader, trail_stubs: Stubs) -> None:
    prefix = f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/"
    folders = {"Bucket": "trail", "Prefix": prefix, "Delimiter": "/", "MaxKeys": 1000}
    trail_stubs.ok(
        "s3",
        "ListObjectsV2",
        {"CommonPrefixes": [{"Prefix": prefix + "2025/"}], "IsTruncated": True, "NextContinuationToken": "c2"},
        folders,
    )
    trail_stubs.ok(
        "s3",
        "ListObjectsV2",
        {"CommonPrefixes": [{"Prefix": prefix + "2026/"}], "IsTruncated": False},
        {**folders, "ContinuationToken": "c2"},
    )
    day = prefix + "2025/03/14/"
    key = day + f"{ACCOUNT}_CloudTrail_{REGION}_20250314T1200Z_abc.json.gz"
    files = {"Bucket": "trail", "Prefix": day, "MaxKeys": 1000, "StartAfter": day + "a"}
    trail_stubs.ok("s3", "ListObjectsV2", {"Contents": [{"Key": key, "Size": 812}], "IsTruncated": False}, files)
    trail_stubs.ok("s3", "GetObject", {"Body": body(b"\x1f\x8b...")}, {"Bucket": "trail", "Key": key})

    assert reader.list_prefixes("trail", prefix) == [prefix + "2025/", prefix + "2026/"]
    pages = list(reader.iter_objects("trail", day, start_after=day + "a"))
    assert [(o.key, o.size) for page in pages for o in page] == [(key, 812)]
    assert reader.get_bytes("trail", key) == b"\x1f\x8b..."


@contract("sqs", "ReceiveMessage", "DeleteMessage")
def test_events_are_received_and_deleted(client: RegistryClient, stubs: Stubs) -> None:
    message = {
        "MessageId": "m1",
        "ReceiptHandle": "rh-1",
        "Body": '{"detail-type": "SageMaker Model Package State Change"}',
    }
    stubs.ok(
        "sqs",
        "ReceiveMessage",
        {"Messages": [message]},
        {"QueueUrl": QUEUE, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 0},
    )
    stubs.ok("sqs", "DeleteMessage", {}, {"QueueUrl": QUEUE, "ReceiptHandle": "rh-1"})

    received = client.receive_messages(QUEUE)
    client.delete_message(QUEUE, received[0]["ReceiptHandle"])

    assert [m["MessageId"] for m in received] == ["m1"]


@contract("sqs", "GetQueueAttributes")
def test_queue_attributes_prove_the_queue_is_readable(client: RegistryClient, stubs: Stubs) -> None:
    stubs.ok(
        "sqs",
        "GetQueueAttributes",
        {"Attributes": {"QueueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:registry-events"}},
        {"QueueUrl": QUEUE, "AttributeNames": ["QueueArn"]},
    )

    assert client._call("sqs", "GetQueueAttributes", QueueUrl=QUEUE, AttributeNames=["QueueArn"])["Attributes"]


@contract("sts", "GetCallerIdentity")
def test_the_account_comes_from_get_caller_identity(client: RegistryClient, stubs: Stubs) -> None:
    identity = {
        "UserId": "AROAEXAMPLE:governance-dashboard",
        "Account": ACCOUNT,
        "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/r/s",
    }
    stubs.ok("sts", "GetCallerIdentity", identity, {})

    assert client.account_id() == ACCOUNT


@contract("sts", "AssumeRole")
@pytest.mark.parametrize("username", ["josé.müller", "李小龙", "o'brien smith", "a", "x" * 80, "ops@example.com"])
def test_assume_role_names_are_what_sts_accepts(client: RegistryClient, stubs: Stubs, username: str) -> None:
    """Fails on the old code: ``josé.müller`` passed str.isalnum() and went to STS as is, which
    STS rejects (ASCII ``[\\w+=,.@-]``, 2-64), so that person's every push failed."""
    from registry_app.aws.identity import fold_identity, is_valid_identity
    from registry_app.aws.session import assume_role_credentials

    role = f"arn:aws:iam::{ACCOUNT}:role/GovernanceWriter"
    cfg = SourceConfig(name="prod", region=REGION, role_arn=role, external_id="ext-123", source_identity=username)
    folded = fold_identity(username)
    expected = {
        "RoleArn": role,
        "RoleSessionName": folded,
        "DurationSeconds": 3600,
        "ExternalId": "ext-123",
        "SourceIdentity": folded,
    }
    expires = dt.datetime(2025, 3, 14, 13, 0, tzinfo=dt.UTC)
    credentials = {
        "AccessKeyId": "ASIAEXAMPLEEXAMPLE01",
        "SecretAccessKey": "s" * 40,
        "SessionToken": "t" * 40,
        "Expiration": expires,
    }
    response = {
        "Credentials": credentials,
        "AssumedRoleUser": {"AssumedRoleId": f"AROAEXAMPLE:{folded}", "Arn": f"{role}/{folded}"},
        "SourceIdentity": folded,
    }
    stubs.ok("sts", "AssumeRole", response, expected)  # also checks the STS patterns and lengths

    creds = assume_role_credentials(stubs.stubber("sts").client, cfg)

    assert is_valid_identity(folded) and creds["expiry_time"] == expires.isoformat()
    assert folded == username or folded.endswith(hashlib.sha256(username.encode()).hexdigest()[:8])
