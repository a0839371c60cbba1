"""Contract tests of the evidence calls: CloudTrail's public keys and digest objects (log file
validation), and the audit anchor's bucket (put, list, read, Object Lock)."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from botocore.response import StreamingBody

from registry_app.aws.anchor_store import AnchorBucket
from registry_app.aws.cloudtrail import CloudTrailReader
from registry_app.aws.errors import AccessDeniedError, NotFoundError
from tests.aws.contracts import REGION, Stubs, contract

START = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
END = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)
DER = bytes.fromhex("30818902818100") + b"\x01" * 10  # opaque to the adapter: passed through as bytes
DIGEST_KEY = (
    "AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2025/03/02/"
    "111122223333_CloudTrail-Digest_eu-west-1_trail_eu-west-1_20250302T100131Z.json.gz"
)


def body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


@contract("cloudtrail", "ListPublicKeys")
def test_public_keys_are_listed_for_a_time_range(reader: CloudTrailReader, trail_stubs: Stubs) -> None:
    key = {
        "Value": DER,
        "ValidityStartTime": START,
        "ValidityEndTime": START + dt.timedelta(days=30),
        "Fingerprint": "31e8b5433410dfb61a9dc45cc65b22ff",
    }
    # NextToken is "reserved for future use": followed if it ever comes, with the same range.
    trail_stubs.ok("cloudtrail", "ListPublicKeys", {"PublicKeyList": [key], "NextToken": "N2"}, {
        "StartTime": START, "EndTime": END
    })  # fmt: skip
    trail_stubs.ok(
        "cloudtrail",
        "ListPublicKeys",
        {"PublicKeyList": [{**key, "Fingerprint": "8eba5db5bea9b640d1c96a77256fe7f2"}]},
        {"StartTime": START, "EndTime": END, "NextToken": "N2"},
    )

    keys = reader.list_public_keys(START, END)

    assert [k.fingerprint for k in keys] == ["31e8b5433410dfb61a9dc45cc65b22ff", "8eba5db5bea9b640d1c96a77256fe7f2"]
    assert keys[0].der == DER and keys[0].valid_from == START
    assert keys[0].valid_at(START + dt.timedelta(days=1)) and not keys[0].valid_at(END + dt.timedelta(days=40))


@contract("cloudtrail", "ListPublicKeys")
def test_a_denied_key_listing_is_an_access_error(reader: CloudTrailReader, trail_stubs: Stubs) -> None:
    trail_stubs.error(
        "cloudtrail",
        "ListPublicKeys",
        "AccessDeniedException",
        "User is not authorized to perform: cloudtrail:ListPublicKeys",
        expected={"StartTime": START, "EndTime": END},
    )
    with pytest.raises(AccessDeniedError):
        reader.list_public_keys(START, END)


@contract("s3", "GetObject")
def test_a_digest_is_read_with_its_signature_metadata(reader: CloudTrailReader, trail_stubs: Stubs) -> None:
    expected = {"Bucket": "acme-cloudtrail", "Key": DIGEST_KEY}
    response = {
        "Body": body(b"\x1f\x8bdigest"),
        "Metadata": {"signature": "ab12", "signature-algorithm": "SHA256withRSA"},
    }
    trail_stubs.ok("s3", "GetObject", response, expected)
    trail_stubs.error(
        "s3", "GetObject", "NoSuchKey", "The specified key does not exist.", status=404, expected=expected
    )

    digest = reader.get_digest("acme-cloudtrail", DIGEST_KEY)

    assert (digest.signature, digest.algorithm, digest.body) == ("ab12", "SHA256withRSA", b"\x1f\x8bdigest")
    with pytest.raises(NotFoundError):  # a deleted digest: its successor's chain is broken
        reader.get_digest("acme-cloudtrail", DIGEST_KEY)


@pytest.fixture
def anchors(request: pytest.FixtureRequest) -> tuple[AnchorBucket, Stubs]:
    bucket = AnchorBucket(REGION)
    stubs = Stubs(bucket.client)
    yield bucket, stubs  # type: ignore[misc]
    stubs.done(getattr(request.function, "__contract__", ()))


@contract("s3", "PutObject", "ListObjectsV2", "GetObject")
def test_an_anchor_is_put_listed_and_read_back(anchors: tuple[AnchorBucket, Stubs]) -> None:
    bucket, stubs = anchors
    data = b'{"seq":7}\n'
    key = "audit/00000000000000000007-20250302T100000000000Z.json"
    stubs.ok(
        "s3",
        "PutObject",
        {"ETag": '"e"'},
        {
            "Bucket": "acme-audit-anchor",
            "Key": key,
            "Body": data,
            "ContentType": "application/json",
            "ChecksumAlgorithm": "SHA256",
        },
    )
    listing = {"Bucket": "acme-audit-anchor", "Prefix": "audit/", "MaxKeys": 1000}
    stubs.ok(
        "s3",
        "ListObjectsV2",
        {"Contents": [{"Key": "audit/a.json"}], "IsTruncated": True, "NextContinuationToken": "C2"},
        listing,
    )
    stubs.ok(
        "s3",
        "ListObjectsV2",
        {"Contents": [{"Key": key}], "IsTruncated": False},
        {**listing, "ContinuationToken": "C2"},
    )
    stubs.ok("s3", "GetObject", {"Body": body(data)}, {"Bucket": "acme-audit-anchor", "Key": key})

    bucket.put("acme-audit-anchor", key, data)
    keys = list(bucket.keys("acme-audit-anchor", "audit/"))
    read = bucket.read("acme-audit-anchor", key)

    assert keys == ["audit/a.json", key] and read == data


@contract("s3", "GetObjectLockConfiguration")
def test_the_anchor_bucket_s_object_lock_is_read(anchors: tuple[AnchorBucket, Stubs]) -> None:
    bucket, stubs = anchors
    expected = {"Bucket": "acme-audit-anchor"}
    locked = {
        "ObjectLockConfiguration": {
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 400}},
        }
    }
    stubs.ok("s3", "GetObjectLockConfiguration", locked, expected)
    stubs.error(
        "s3",
        "GetObjectLockConfiguration",
        "ObjectLockConfigurationNotFoundError",
        "Object Lock configuration does not exist for this bucket",
        status=404,
        expected=expected,
    )

    assert bucket.object_lock("acme-audit-anchor") == "COMPLIANCE 400 days"
    assert bucket.object_lock("acme-audit-anchor") == ""
