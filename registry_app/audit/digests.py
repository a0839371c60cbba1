"""CloudTrail digest files: their names, their content, and the check that one is authentic. Pure.

A digest (gzip'd JSON, hourly, per Region) lists the log files delivered in its hour with the
SHA-256 of each one's *uncompressed* content, and carries the previous digest's hash and
signature. Its own signature (hex, in the object's ``x-amz-meta-signature``) is RSA PKCS#1 v1.5
with SHA-256 over the *data signing string*::

    digestEndTime + "\\n" + digestS3Bucket + "/" + digestS3Object + "\\n"
    + hex(sha256(uncompressed digest file)) + "\\n" + previousDigestSignature   # "null" if none

made with the Region's private key whose public half ``ListPublicKeys`` returns under the
fingerprint the digest names (``digestPublicKeyFingerprint``). Sources: the CloudTrail user
guide, "CloudTrail digest file structure" and "Custom implementations of CloudTrail log file
integrity validation"; the AWS CLI's ``validate-logs`` (``Sha256RSADigestValidator``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from registry_app.audit.trail_files import LogFileError, decompress
from registry_app.aws.cloudtrail_digests import DigestObject, PublicKey

__all__ = [
    "SIGNATURE_ALGORITHM",
    "DigestError",
    "LogEntry",
    "ParsedDigest",
    "authenticate",
    "digest_key_time",
    "digest_root",
    "is_backfill_digest",
    "is_digest_key",
    "parse_digest",
    "signing_string",
]

SIGNATURE_ALGORITHM = "SHA256withRSA"
HASH_ALGORITHM = "SHA-256"
# A key signs digests from its ValidityStartTime to its ValidityEndTime; a digest delivered late is
# signed a little after its end time, so that much slack is allowed past a key's end.
KEY_SLACK = dt.timedelta(days=1)

_DIGEST_NAME = re.compile(
    r"^(?P<account>\d{12})_CloudTrail-Digest_(?P<region>[a-z0-9-]+)_(?P<rest>.+)_"
    r"(?P<ts>\d{8}T\d{6}Z)(?P<backfill>_backfill)?\.json\.gz$"
)
_REQUIRED = ("digestStartTime", "digestEndTime", "digestS3Bucket", "digestS3Object", "digestPublicKeyFingerprint")


class DigestError(ValueError):
    """A digest that is not authentic or not readable; ``str()`` is the reason shown to people."""


@dataclass(frozen=True)
class LogEntry:
    bucket: str
    key: str
    hash_value: str
    hash_algorithm: str


@dataclass(frozen=True)
class ParsedDigest:
    data: dict[str, Any]
    sha256: str  # of the uncompressed file
    start: dt.datetime
    end: dt.datetime
    bucket: str
    key: str
    fingerprint: str
    algorithm: str
    previous_bucket: str
    previous_key: str
    previous_hash: str
    previous_hash_algorithm: str
    previous_signature: str | None
    log_files: list[LogEntry] = field(default_factory=list)

    @property
    def is_start(self) -> bool:
        """A starting digest (validation started or restarted): no previous digest."""
        return not self.previous_key


# --------------------------------------------------------------------------------------------- names


def is_digest_key(key: str) -> bool:
    return "/CloudTrail-Digest/" in key and bool(_DIGEST_NAME.match(key.rsplit("/", 1)[-1]))


def is_backfill_digest(key: str) -> bool:
    match = _DIGEST_NAME.match(key.rsplit("/", 1)[-1])
    return bool(match and match["backfill"])


def digest_key_time(key: str) -> dt.datetime | None:
    """The digest's end time, from its name (``..._20150817T150131Z.json.gz``)."""
    match = _DIGEST_NAME.match(key.rsplit("/", 1)[-1])
    if not match:
        return None
    return dt.datetime.strptime(match["ts"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)


def digest_root(log_root: str) -> str:
    """The digest folder beside a trail folder: ``.../<account>/CloudTrail-Digest/<region>/``."""
    head, marker, tail = log_root.rpartition("/CloudTrail/")
    return f"{head}/CloudTrail-Digest/{tail}" if marker else log_root


# --------------------------------------------------------------------------------------------- content


def _time(data: dict[str, Any], name: str) -> dt.datetime:
    value = data.get(name)
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise DigestError(f"invalid format: {name} is {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def parse_digest(body: bytes) -> ParsedDigest:
    """A digest file's bytes (gzip'd or plain JSON) → its fields; ``DigestError`` if malformed."""
    try:
        plain = decompress(body)
        data = json.loads(plain.decode("utf-8"))
    except (LogFileError, ValueError, UnicodeDecodeError) as exc:
        raise DigestError(f"invalid format: not a gzip'd JSON digest ({exc})") from exc
    if not isinstance(data, dict):
        raise DigestError("invalid format: not a JSON object")
    missing = [name for name in _REQUIRED if not data.get(name)]
    if missing or "previousDigestSignature" not in data:
        raise DigestError(f"invalid format: {', '.join(missing or ['previousDigestSignature'])} missing")
    entries = []
    for item in data.get("logFiles") or []:
        if isinstance(item, dict) and item.get("s3Object"):
            entries.append(
                LogEntry(
                    bucket=_text(item.get("s3Bucket")),
                    key=_text(item.get("s3Object")),
                    hash_value=_text(item.get("hashValue")).lower(),
                    hash_algorithm=_text(item.get("hashAlgorithm")),
                )
            )
    previous = data.get("previousDigestSignature")
    return ParsedDigest(
        data=data,
        sha256=hashlib.sha256(plain).hexdigest(),
        start=_time(data, "digestStartTime"),
        end=_time(data, "digestEndTime"),
        bucket=_text(data.get("digestS3Bucket")),
        key=_text(data.get("digestS3Object")),
        fingerprint=_text(data.get("digestPublicKeyFingerprint")),
        algorithm=_text(data.get("digestSignatureAlgorithm")),
        previous_bucket=_text(data.get("previousDigestS3Bucket")),
        previous_key=_text(data.get("previousDigestS3Object")),
        previous_hash=_text(data.get("previousDigestHashValue")).lower(),
        previous_hash_algorithm=_text(data.get("previousDigestHashAlgorithm")),
        previous_signature=previous if isinstance(previous, str) else None,
        log_files=entries,
    )


def signing_string(parsed: ParsedDigest) -> bytes:
    """The data signing string (the previous signature is the text ``null`` in a starting digest)."""
    previous = parsed.previous_signature if parsed.previous_signature is not None else "null"
    end = parsed.data["digestEndTime"]
    return f"{end}\n{parsed.bucket}/{parsed.key}\n{parsed.sha256}\n{previous}".encode()


# --------------------------------------------------------------------------------------------- authenticity


def _key_for(parsed: ParsedDigest, keys: list[PublicKey]) -> PublicKey:
    named = [key for key in keys if key.fingerprint.lower() == parsed.fingerprint.lower()]
    if not named:
        raise DigestError(f"public key {parsed.fingerprint} is not one of the Region's CloudTrail keys")
    for key in named:
        start_ok = key.valid_from is None or key.valid_from <= parsed.end
        end_ok = key.valid_until is None or parsed.end <= key.valid_until + KEY_SLACK
        if start_ok and end_ok:
            return key
    raise DigestError(f"public key {parsed.fingerprint} was not valid at {parsed.data['digestEndTime']}")


def _verify(der: bytes, signature_hex: str, data: bytes) -> None:
    try:
        public = load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise DigestError(f"the public key cannot be loaded ({exc})") from exc
    if not isinstance(public, rsa.RSAPublicKey):
        raise DigestError("the public key is not an RSA key")
    try:
        signature = bytes.fromhex(signature_hex.strip())
    except ValueError as exc:
        raise DigestError("signature verification failed: the signature is not hex") from exc
    try:
        public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise DigestError("signature verification failed") from exc


def authenticate(obj: DigestObject, keys: list[PublicKey]) -> ParsedDigest:
    """Check that a digest read from S3 is CloudTrail's: still where it was delivered, signed with
    SHA256withRSA by the Region's key named in it (valid at its end time), signature verified over
    the data signing string. Returns the parsed digest; ``DigestError`` with the reason if not."""
    parsed = parse_digest(obj.body)
    if parsed.bucket != obj.bucket or parsed.key != obj.key:
        raise DigestError(f"moved from its original location (it names s3://{parsed.bucket}/{parsed.key})")
    if not obj.signature:
        raise DigestError("no x-amz-meta-signature on the digest object")
    algorithm = obj.algorithm or parsed.algorithm
    if algorithm != SIGNATURE_ALGORITHM or (parsed.algorithm and parsed.algorithm != SIGNATURE_ALGORITHM):
        raise DigestError(f"unsupported signature algorithm {algorithm!r}")
    key = _key_for(parsed, keys)
    _verify(key.der, obj.signature, signing_string(parsed))
    return parsed
