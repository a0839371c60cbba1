"""The audit anchor's S3 bucket: put an anchor object, list the anchors, read one back, and ask
whether the bucket holds objects under Object Lock.

Called with the dashboard's *own* credentials (the standard chain; no source role): the anchor
bucket belongs to the dashboard's operators, not to a registry account (docs/audit-anchor.md,
docs/iam/audit-anchor-policy.json). Objects are written with a SHA-256 checksum, which S3 requires
for a PUT into a bucket whose default retention applies Object Lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from registry_app.aws.errors import AwsError, RetryableAwsError
from registry_app.aws.sagemaker import RegistryClient
from registry_app.aws.session import CallStats, SourceConfig

__all__ = ["AnchorBucket"]

PAGE_SIZE = 1000
# The anchor is written inside an export request as well: fail fast rather than hold the page.
MAX_ATTEMPTS = 3


class AnchorBucket(RegistryClient):
    """S3 calls on the anchor bucket, as the dashboard itself."""

    def __init__(self, region: str, stats: CallStats | None = None) -> None:
        super().__init__(SourceConfig(name="audit-anchor", region=region), stats, max_attempts=MAX_ATTEMPTS)

    def put(self, bucket: str, key: str, body: bytes) -> None:
        self._call(
            "s3",
            "PutObject",
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            ChecksumAlgorithm="SHA256",
        )

    def keys(self, bucket: str, prefix: str) -> Iterator[str]:
        """Every key under ``prefix``, in key order (paged)."""
        token: str | None = None
        while True:
            params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": PAGE_SIZE}
            if token:
                params["ContinuationToken"] = token
            response = self._call("s3", "ListObjectsV2", **params)
            for item in response.get("Contents") or []:
                if item.get("Key"):
                    yield str(item["Key"])
            token = response.get("NextContinuationToken")
            if not response.get("IsTruncated") or not token:
                return

    def read(self, bucket: str, key: str) -> bytes:
        response = self._call("s3", "GetObject", Bucket=bucket, Key=key)
        try:
            return bytes(response["Body"].read())
        except Exception as exc:  # noqa: BLE001 - a connection dropped mid-body
            raise RetryableAwsError(f"GetObject {key}: {exc}", operation="GetObject", code="NetworkError") from exc

    def object_lock(self, bucket: str) -> str:
        """The bucket's default retention, e.g. ``"COMPLIANCE 400 days"``; ``""`` without Object Lock.

        Raises ``AwsError`` when it cannot be read (e.g. ``s3:GetBucketObjectLockConfiguration`` not
        granted), which the caller reports as "unknown".
        """
        try:
            response = self._call("s3", "GetObjectLockConfiguration", Bucket=bucket)
        except AwsError as exc:
            if exc.code == "ObjectLockConfigurationNotFoundError":
                return ""
            raise
        config = response.get("ObjectLockConfiguration") or {}
        if config.get("ObjectLockEnabled") != "Enabled":
            return ""
        retention = ((config.get("Rule") or {}).get("DefaultRetention")) or {}
        mode = str(retention.get("Mode") or "")
        if not mode:
            return "enabled, no default retention"
        span = f"{retention['Days']} days" if retention.get("Days") else f"{retention.get('Years', '?')} years"
        return f"{mode} {span}"
