"""A CloudTrail trail with log file validation, built the way CloudTrail delivers it: log files, and
hourly digest files signed with a generated RSA key whose public half the AWS fake's
``ListPublicKeys`` returns (format: the CloudTrail user guide, "CloudTrail digest file structure";
signing string as in the AWS CLI's validate-logs)."""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import boto3
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from registry_app.devtools import aws_fake
from tests.audit.ingest import records as r

TRAIL = "management-events"


@dataclass
class SigningKey:
    private: rsa.RSAPrivateKey

    @property
    def der(self) -> bytes:  # PKCS#1, as ListPublicKeys documents it
        return self.private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)

    @property
    def fingerprint(self) -> str:
        return hashlib.md5(self.der, usedforsecurity=False).hexdigest()

    def sign(self, data: bytes) -> str:
        return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256()).hex()


@functools.cache
def signing_key(n: int = 0) -> SigningKey:
    """The n-th test key (generated once per test process: 2048-bit keys take a while)."""
    return SigningKey(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Delivered:
    key: str
    delivered: dt.datetime
    sha256: str  # of the uncompressed content


@dataclass
class SignedTrail:
    """Log files and digests in the trail bucket (moto S3). ``register()`` puts the key in the fake."""

    bucket: str
    region: str = r.REGION
    account: str = r.ACCOUNT
    key: SigningKey = field(default_factory=signing_key)
    files: list[Delivered] = field(default_factory=list)
    digests: list[tuple[str, str, str, bytes]] = field(default_factory=list)  # (key, signature, sha256, plain)

    def __post_init__(self) -> None:
        self.s3 = boto3.client("s3", region_name=self.region)

    def register(self, key: SigningKey | None = None, *, since: dt.datetime | None = None) -> str:
        key = key or self.key
        start = since or dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        return aws_fake.add_cloudtrail_public_key(
            self.region, key.der, valid_from=start, valid_until=start + dt.timedelta(days=3650)
        )

    # -- log files ---------------------------------------------------------------------------
    def deliver(self, records: list[dict[str, Any]], when: dt.datetime, unique: str = "0Sfy6m9f6iBzmoPF") -> str:
        plain = json.dumps({"Records": records}).encode()
        key = r.log_key(when, unique, account=self.account, region=self.region)
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=gzip.compress(plain))
        self.files.append(Delivered(key, when, hashlib.sha256(plain).hexdigest()))
        return key

    def tamper(self, key: str, records: list[dict[str, Any]]) -> None:
        """Replace a delivered log file's content (what an attacker with bucket access would do)."""
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=gzip.compress(json.dumps({"Records": records}).encode()))

    # -- digests -----------------------------------------------------------------------------
    def digest_key(self, end: dt.datetime, *, backfill: bool = False) -> str:
        stamp = end.strftime("%Y%m%dT%H%M%SZ")
        suffix = "_backfill" if backfill else ""
        return (
            f"AWSLogs/{self.account}/CloudTrail-Digest/{self.region}/{end:%Y/%m/%d}/"
            f"{self.account}_CloudTrail-Digest_{self.region}_{TRAIL}_{self.region}_{stamp}{suffix}.json.gz"
        )

    def digest(
        self,
        end: dt.datetime,
        *,
        start: dt.datetime | None = None,
        files: list[Delivered] | None = None,
        key: SigningKey | None = None,
        previous: tuple[str, str, str] | None | bool = True,
        store: bool = True,
    ) -> str:
        """Deliver the digest of ``[start, end)`` (files delivered then, unless given), chained to the
        last digest delivered (``previous=None``: a starting digest; a tuple: (key, signature, sha))."""
        start = start or end - dt.timedelta(hours=1)
        listed = files if files is not None else [f for f in self.files if start <= f.delivered < end]
        if previous is True:
            previous = self.digests[-1][:3] if self.digests else None
        digest_key = self.digest_key(end)
        document = {
            "awsAccountId": self.account,
            "digestStartTime": iso(start),
            "digestEndTime": iso(end),
            "digestS3Bucket": self.bucket,
            "digestS3Object": digest_key,
            "digestPublicKeyFingerprint": (key or self.key).fingerprint,
            "digestSignatureAlgorithm": "SHA256withRSA",
            "newestEventTime": None,
            "oldestEventTime": None,
            "previousDigestS3Bucket": self.bucket if previous else None,
            "previousDigestS3Object": previous[0] if previous else None,
            "previousDigestHashValue": previous[2] if previous else None,
            "previousDigestHashAlgorithm": "SHA-256" if previous else None,
            "previousDigestSignature": previous[1] if previous else None,
            "logFiles": [
                {
                    "s3Bucket": self.bucket,
                    "s3Object": f.key,
                    "hashValue": f.sha256,
                    "hashAlgorithm": "SHA-256",
                    "newestEventTime": iso(f.delivered),
                    "oldestEventTime": iso(f.delivered),
                }
                for f in listed
            ],
        }
        plain = json.dumps(document).encode()
        sha = hashlib.sha256(plain).hexdigest()
        previous_signature = previous[1] if previous else "null"
        to_sign = f"{iso(end)}\n{self.bucket}/{digest_key}\n{sha}\n{previous_signature}".encode()
        signature = (key or self.key).sign(to_sign)
        if store:
            self.put_digest(digest_key, plain, signature)
        self.digests.append((digest_key, signature, sha, plain))
        return digest_key

    def put_digest(self, key: str, plain: bytes, signature: str) -> None:
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=gzip.compress(plain),
            Metadata={"signature": signature, "signature-algorithm": "SHA256withRSA"},
        )

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)
