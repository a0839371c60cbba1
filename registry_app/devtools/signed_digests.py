"""Signed CloudTrail digest files for the demo's trail: one per day and Region (CloudTrail writes one an
hour; the dashboard checks any period), chained, signed with a key generated here whose public half is
registered with the AWS fake's ``ListPublicKeys`` (docs/aws-fake.md §7). Format: the CloudTrail user
guide, "CloudTrail digest file structure"; signing string as the AWS CLI's ``validate-logs`` checks it.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
from collections import defaultdict
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from registry_app.devtools.aws_fake import add_cloudtrail_public_key

__all__ = ["write_backfill_digest", "write_signed_digests"]

STAMP = "%Y-%m-%dT%H:%M:%SZ"


def _sign(private: rsa.RSAPrivateKey, text: str) -> str:
    return private.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256()).hex()


def write_signed_digests(
    s3: Any, bucket: str, account: str, files: dict[str, str], *, now: dt.datetime, trail: str = "acme-org-trail"
) -> int:
    """Digest files for log files ``{key: sha256 of the uncompressed content}``; returns how many.

    Keys are ``AWSLogs/<account>/CloudTrail/<region>/<yyyy>/<mm>/<dd>/...``: one digest per Region and
    day listing that day's files, from the first day to today. With ``AWS_ENDPOINT_URL`` set (the demo's
    fake server in another process) the key is registered over HTTP, else in this process.
    """
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    by_region: dict[str, dict[dt.date, list[tuple[str, str]]]] = defaultdict(lambda: defaultdict(list))
    for key, sha in sorted(files.items()):
        parts = key.split("/")
        day = dt.date(int(parts[4]), int(parts[5]), int(parts[6]))
        by_region[parts[3]][day].append((key, sha))
    written = 0
    for region, days in sorted(by_region.items()):
        first = min(days)
        fingerprint = add_cloudtrail_public_key(
            region,
            der,
            valid_from=dt.datetime.combine(first, dt.time.min, tzinfo=dt.UTC) - dt.timedelta(days=1),
            valid_until=now + dt.timedelta(days=365),
            endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
        )
        previous: tuple[str, str, str] | None = None
        day = first
        while day <= now.date():
            start = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
            end = start + dt.timedelta(days=1) - dt.timedelta(seconds=1)
            digest_key = (
                f"AWSLogs/{account}/CloudTrail-Digest/{region}/{day:%Y/%m/%d}/"
                f"{account}_CloudTrail-Digest_{region}_{trail}_{region}_{end:%Y%m%dT%H%M%SZ}.json.gz"
            )
            document = {
                "awsAccountId": account,
                "digestStartTime": start.strftime(STAMP),
                "digestEndTime": end.strftime(STAMP),
                "digestS3Bucket": bucket,
                "digestS3Object": digest_key,
                "digestPublicKeyFingerprint": fingerprint,
                "digestSignatureAlgorithm": "SHA256withRSA",
                "newestEventTime": None,
                "oldestEventTime": None,
                "previousDigestS3Bucket": bucket if previous else None,
                "previousDigestS3Object": previous[0] if previous else None,
                "previousDigestHashValue": previous[2] if previous else None,
                "previousDigestHashAlgorithm": "SHA-256" if previous else None,
                "previousDigestSignature": previous[1] if previous else None,
                "logFiles": [
                    {"s3Bucket": bucket, "s3Object": key, "hashValue": sha, "hashAlgorithm": "SHA-256"}
                    for key, sha in days.get(day, [])
                ],
            }
            plain = json.dumps(document).encode()
            sha = hashlib.sha256(plain).hexdigest()
            signature = _sign(
                private, f"{end.strftime(STAMP)}\n{bucket}/{digest_key}\n{sha}\n{previous[1] if previous else 'null'}"
            )
            s3.put_object(
                Bucket=bucket,
                Key=digest_key,
                Body=gzip.compress(plain, mtime=0),
                Metadata={"signature": signature, "signature-algorithm": "SHA256withRSA"},
            )
            previous = (digest_key, signature, sha)
            written += 1
            day += dt.timedelta(days=1)
    return written


def write_backfill_digest(
    s3: Any, bucket: str, account: str, region: str, files: dict[str, str], *, now: dt.datetime
) -> str:
    """A ``_backfill`` digest listing log files delivered after the newest digest of ``region`` was
    written (as CloudTrail does for late files), chained to that digest and signed with a new key
    registered with the fake. Returns its key, or "" when the Region has no digest to follow."""
    prefix = f"AWSLogs/{account}/CloudTrail-Digest/{region}/"
    keys = [
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
        if obj["Key"].endswith(".json.gz") and not obj["Key"].endswith("_backfill.json.gz")
    ]
    if not keys:
        return ""
    previous_key = max(keys)  # names end in the digest's end time: the newest sorts last
    previous = s3.get_object(Bucket=bucket, Key=previous_key)
    previous_plain = gzip.decompress(previous["Body"].read())
    previous_signature = previous["Metadata"]["signature"]
    before = json.loads(previous_plain)
    start = dt.datetime.strptime(before["digestStartTime"], STAMP).replace(tzinfo=dt.UTC)
    end = dt.datetime.strptime(before["digestEndTime"], STAMP).replace(tzinfo=dt.UTC)
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    fingerprint = add_cloudtrail_public_key(
        region,
        der,
        valid_from=start - dt.timedelta(days=1),
        valid_until=now + dt.timedelta(days=365),
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
    )
    digest_key = previous_key.removesuffix(".json.gz") + "_backfill.json.gz"
    document = {
        **before,
        "digestS3Object": digest_key,
        "digestPublicKeyFingerprint": fingerprint,
        "previousDigestS3Bucket": bucket,
        "previousDigestS3Object": previous_key,
        "previousDigestHashValue": hashlib.sha256(previous_plain).hexdigest(),
        "previousDigestHashAlgorithm": "SHA-256",
        "previousDigestSignature": previous_signature,
        "logFiles": [
            {"s3Bucket": bucket, "s3Object": key, "hashValue": sha, "hashAlgorithm": "SHA-256"}
            for key, sha in sorted(files.items())
        ],
    }
    plain = json.dumps(document).encode()
    sha = hashlib.sha256(plain).hexdigest()
    signature = _sign(private, f"{end.strftime(STAMP)}\n{bucket}/{digest_key}\n{sha}\n{previous_signature}")
    s3.put_object(
        Bucket=bucket,
        Key=digest_key,
        Body=gzip.compress(plain, mtime=0),
        Metadata={"signature": signature, "signature-algorithm": "SHA256withRSA"},
    )
    return digest_key
