"""CloudTrail log file integrity: the Region's public keys (``ListPublicKeys``) and digest objects
read with their signature metadata (``x-amz-meta-signature``, ``x-amz-meta-signature-algorithm``).

Docs: the CloudTrail user guide, "CloudTrail digest file structure" and "Custom implementations of
CloudTrail log file integrity validation" (shared/aws-formats.md §2.5); botocore
``cloudtrail/2013-11-01`` ``ListPublicKeys`` (``Value``: "The DER encoded public key value in
PKCS#1 format"; ``NextToken``: "Reserved for future use"). Keys are per Region: a digest is
checked with a key listed in the Region it was delivered from, i.e. the source's client.

Functions take the source's ``RegistryClient`` (``CloudTrailReader`` exposes them as methods) and
raise only ``registry_app.aws.errors`` exceptions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from registry_app.aws.errors import RetryableAwsError

if TYPE_CHECKING:
    from registry_app.aws.sagemaker import RegistryClient

__all__ = ["DigestObject", "PublicKey", "get_digest_object", "list_public_keys"]

MAX_KEY_PAGES = 20  # NextToken is "reserved for future use": follow it, but never forever


@dataclass(frozen=True)
class PublicKey:
    fingerprint: str
    der: bytes  # PKCS#1 RSAPublicKey (or SubjectPublicKeyInfo), DER
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None

    def valid_at(self, when: dt.datetime) -> bool:
        after_start = self.valid_from is None or self.valid_from <= when
        before_end = self.valid_until is None or when <= self.valid_until
        return after_start and before_end


@dataclass(frozen=True)
class DigestObject:
    bucket: str
    key: str
    body: bytes  # as stored (gzip)
    signature: str  # hex, from the object's metadata ("" when absent)
    algorithm: str  # e.g. "SHA256withRSA" ("" when absent)


def _utc(value: Any) -> dt.datetime | None:
    if not isinstance(value, dt.datetime):
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def list_public_keys(client: RegistryClient, start: dt.datetime, end: dt.datetime) -> list[PublicKey]:
    """The public keys whose private keys signed digests between ``start`` and ``end`` (this Region).

    The returned keys' validity ranges may overlap; the caller picks by fingerprint and time.
    """
    keys: list[PublicKey] = []
    token: str | None = None
    for _ in range(MAX_KEY_PAGES):
        params: dict[str, Any] = {"StartTime": start, "EndTime": end}
        if token:
            params["NextToken"] = token
        response = client._call("cloudtrail", "ListPublicKeys", **params)
        for item in response.get("PublicKeyList") or []:
            value = item.get("Value")
            if isinstance(value, str):  # a client that leaves blobs base64-encoded (as the AWS CLI does)
                import base64

                value = base64.b64decode(value)
            if not isinstance(value, bytes | bytearray) or not item.get("Fingerprint"):
                continue
            keys.append(
                PublicKey(
                    fingerprint=str(item["Fingerprint"]),
                    der=bytes(value),
                    valid_from=_utc(item.get("ValidityStartTime")),
                    valid_until=_utc(item.get("ValidityEndTime")),
                )
            )
        token = response.get("NextToken") or None
        if not token:
            break
    return keys


def get_digest_object(client: RegistryClient, bucket: str, key: str) -> DigestObject:
    """GET one digest file with the signature metadata CloudTrail stores beside it.

    A missing object raises ``NotFoundError`` (NoSuchKey): for a digest named as the previous one
    by a newer digest, that is a deleted digest, i.e. a broken chain.
    """
    response = client._call("s3", "GetObject", Bucket=bucket, Key=key)
    try:
        body = bytes(response["Body"].read())
    except Exception as exc:  # noqa: BLE001 - a connection dropped mid-body
        raise RetryableAwsError(f"GetObject {key}: {exc}", operation="GetObject", code="NetworkError") from exc
    # boto3 returns user metadata without the x-amz-meta- prefix, lower-cased.
    metadata = {str(k).lower(): str(v) for k, v in (response.get("Metadata") or {}).items()}
    return DigestObject(
        bucket=bucket,
        key=key,
        body=body,
        signature=metadata.get("signature", ""),
        algorithm=metadata.get("signature-algorithm", ""),
    )
