"""The one adapter that talks to SageMaker, S3, STS and SQS for a registry source.

Every method returns plain JSON-safe dictionaries (datetimes as ISO-8601 strings, no
``ResponseMetadata``), the same shape EventBridge delivers, so ``registry_app.mirror.mapping`` maps a
single form. Every failure is raised as one of ``registry_app.aws.errors``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from registry_app.aws.errors import AwsError, translate
from registry_app.aws.session import CallStats, SourceConfig, make_client, timed

PAGE_SIZE = 100  # the API maximum for ListModelPackages / ListModelPackageGroups / Search


def jsonable(value: Any) -> Any:
    """Datetimes to ISO strings, recursively; drops ResponseMetadata."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


class ReportTooLarge(AwsError):
    pass


class UnsupportedUri(AwsError):
    pass


class ReportFetchTimeout(AwsError):
    pass


@dataclass(frozen=True)
class FetchedObject:
    body: bytes
    sha256: str
    size: int


# Bucket names as S3 allows them (lower case, digits, dots, hyphens; 3-63 characters; no "..").
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_LIKE_RE = re.compile(r"\d+\.\d+\.\d+\.\d+")  # S3 forbids bucket names formatted as IP addresses
_READ_CHUNK = 64 * 1024


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``(bucket, key)`` of an ``s3://bucket/key`` URI; anything else raises ``UnsupportedUri``.

    Registry records are written by anyone who can register a model, so a report URI is untrusted:
    only this one scheme is ever fetched, and only through the S3 client. Deliberately strict: the
    scheme must be exactly ``s3://`` (SageMaker writes it in lower case; ``S3://``, leading blanks and
    ``https://`` virtual-host forms are refused rather than normalised), the bucket must be a valid
    bucket name (no credentials, port or host), and the key must be non-empty and free of control
    characters. Nothing is fetched for a refused URI.
    """
    text = uri if isinstance(uri, str) else ""
    shown = text[:200]
    if not text.startswith("s3://"):
        scheme = text.split(":", 1)[0] if ":" in text[:32] else ""
        reason = f"scheme {scheme!r} is never fetched" if scheme else "no s3:// scheme"
        raise UnsupportedUri(f"only s3://bucket/key URIs are fetched; {reason} (URI {shown!r})", operation="GetObject")
    bucket, slash, key = text[len("s3://") :].partition("/")
    if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket or _IP_LIKE_RE.fullmatch(bucket):
        raise UnsupportedUri(f"not a valid S3 bucket name in {shown!r}; nothing fetched", operation="GetObject")
    if not slash or not key or any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise UnsupportedUri(f"no usable object key in {shown!r}; nothing fetched", operation="GetObject")
    return bucket, key


class RegistryClient:
    """AWS calls for one source. Thread-safe: clients are shared across worker threads."""

    def __init__(self, cfg: SourceConfig, stats: CallStats | None = None, *, max_attempts: int | None = None) -> None:
        self.cfg = cfg
        self.stats = stats or CallStats()
        self.max_attempts = max_attempts
        self._clients: dict[str, Any] = {}

    # -- plumbing -------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            client = make_client(self.cfg, service, self.stats, max_attempts=self.max_attempts)
            self._clients[service] = client
        return client

    def _call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        client = self.client(service)
        method = getattr(client, _snake(operation))
        try:
            return timed(self.stats, operation, method, **kwargs)
        except Exception as exc:  # noqa: BLE001 - translated into our own hierarchy
            raise translate(exc, operation) from exc

    def _pages(self, service: str, operation: str, result_key: str, **kwargs: Any) -> Iterator[list[dict]]:
        token: str | None = None
        while True:
            params = dict(kwargs)
            if token:
                params["NextToken"] = token
            response = self._call(service, operation, **params)
            yield [jsonable(item) for item in response.get(result_key, [])]
            token = response.get("NextToken")
            if not token:
                return

    # -- identity -------------------------------------------------------------------------
    def account_id(self) -> str:
        return str(self._call("sts", "GetCallerIdentity")["Account"])

    # -- model package groups ------------------------------------------------------------
    def iter_group_pages(self, *, cross_account: bool = False) -> Iterator[list[dict]]:
        params: dict[str, Any] = {"MaxResults": PAGE_SIZE}
        if cross_account:
            params["CrossAccountFilterOption"] = "CrossAccount"
        yield from self._pages("sagemaker", "ListModelPackageGroups", "ModelPackageGroupSummaryList", **params)

    def describe_group(self, name_or_arn: str) -> dict[str, Any]:
        return jsonable(self._call("sagemaker", "DescribeModelPackageGroup", ModelPackageGroupName=name_or_arn))

    def list_tags(self, arn: str) -> dict[str, str]:
        tags: dict[str, str] = {}
        for page in self._pages("sagemaker", "ListTags", "Tags", ResourceArn=arn, MaxResults=100):
            tags.update({t["Key"]: t.get("Value", "") for t in page})
        return tags

    # -- model packages ------------------------------------------------------------------
    def iter_package_summary_pages(self, *, group: str | None = None) -> Iterator[list[dict]]:
        """All versioned packages (100 per call), or one group's when ``group`` is given."""
        params: dict[str, Any] = {"MaxResults": PAGE_SIZE, "ModelPackageType": "Versioned"}
        if group:
            params["ModelPackageGroupName"] = group
        yield from self._pages("sagemaker", "ListModelPackages", "ModelPackageSummaryList", **params)

    def iter_search_package_pages(
        self, *, modified_since: dt.datetime | None = None, group: str | None = None
    ) -> Iterator[list[dict]]:
        """Full ModelPackage records through Search (100 per call on AWS), oldest change first;
        only one model package group's when ``group`` (a name) is given."""
        params: dict[str, Any] = {
            "Resource": "ModelPackage",
            "MaxResults": PAGE_SIZE,
            "SortBy": "LastModifiedTime",
            "SortOrder": "Ascending",
        }
        filters: list[dict[str, str]] = []
        if modified_since is not None:
            filters.append(
                {
                    "Name": "LastModifiedTime",
                    "Operator": "GreaterThanOrEqualTo",
                    "Value": modified_since.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                }
            )
        if group:
            filters.append({"Name": "ModelPackageGroupName", "Operator": "Equals", "Value": group})
        if filters:
            params["SearchExpression"] = {"Filters": filters}
        for page in self._pages("sagemaker", "Search", "Results", **params):
            yield [record["ModelPackage"] for record in page if record.get("ModelPackage")]

    def describe_package(self, arn: str) -> dict[str, Any]:
        return jsonable(self._call("sagemaker", "DescribeModelPackage", ModelPackageName=arn))

    def update_package(self, **params: Any) -> dict[str, Any]:
        return jsonable(self._call("sagemaker", "UpdateModelPackage", **params))

    # -- model cards ---------------------------------------------------------------------
    def iter_model_card_pages(self) -> Iterator[list[dict]]:
        yield from self._pages("sagemaker", "ListModelCards", "ModelCardSummaries", MaxResults=100)

    def describe_model_card(self, name_or_arn: str) -> dict[str, Any]:
        return jsonable(self._call("sagemaker", "DescribeModelCard", ModelCardName=name_or_arn))

    # -- endpoints -----------------------------------------------------------------------
    def iter_endpoint_pages(self) -> Iterator[list[dict]]:
        yield from self._pages("sagemaker", "ListEndpoints", "Endpoints", MaxResults=100)

    def describe_endpoint(self, name: str) -> dict[str, Any]:
        return jsonable(self._call("sagemaker", "DescribeEndpoint", EndpointName=name))

    def describe_endpoint_config(self, name: str) -> dict[str, Any]:
        return jsonable(self._call("sagemaker", "DescribeEndpointConfig", EndpointConfigName=name))

    def describe_model(self, name: str) -> dict[str, Any]:
        return jsonable(self._call("sagemaker", "DescribeModel", ModelName=name))

    # -- S3 (evaluation reports) ---------------------------------------------------------
    def get_object(self, uri: str, *, max_bytes: int, timeout_s: float | None = None) -> FetchedObject:
        """GET at most ``max_bytes`` (+1 to detect overflow) of an ``s3://`` object; one call.

        ``timeout_s`` bounds the whole body transfer (each socket read is already bounded by the
        client's read timeout), so a server trickling bytes cannot hold a sync thread for long.
        """
        bucket, key = parse_s3_uri(uri)
        try:
            response = self._call("s3", "GetObject", Bucket=bucket, Key=key, Range=f"bytes=0-{max_bytes}")
        except AwsError as exc:
            if _empty_object(exc):
                # S3 answers a ranged GET of a 0-byte object with 416 InvalidRange (no byte 0 to
                # send): the object is there and empty, which the report parser names as such.
                return FetchedObject(body=b"", sha256=hashlib.sha256(b"").hexdigest(), size=0)
            raise
        stream = response["Body"]
        try:
            body = _read_capped(stream, max_bytes + 1, uri, timeout_s)
        finally:
            stream.close()
        total = _total_size(response, len(body))
        if total > max_bytes or len(body) > max_bytes:
            raise ReportTooLarge(f"{uri}: {total} bytes exceeds the {max_bytes}-byte cap", operation="GetObject")
        return FetchedObject(body=body, sha256=hashlib.sha256(body).hexdigest(), size=len(body))

    # -- SQS (EventBridge events) --------------------------------------------------------
    def receive_messages(self, queue_url: str, *, wait_seconds: int = 0, max_messages: int = 10) -> list[dict]:
        response = self._call(
            "sqs",
            "ReceiveMessage",
            QueueUrl=queue_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_seconds,
        )
        return list(response.get("Messages", []))

    def delete_message(self, queue_url: str, receipt_handle: str) -> None:
        self._call("sqs", "DeleteMessage", QueueUrl=queue_url, ReceiptHandle=receipt_handle)


def _read_capped(stream: Any, limit: int, uri: str, timeout_s: float | None) -> bytes:
    """Read at most ``limit`` bytes in chunks, giving up once ``timeout_s`` has passed."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        if deadline is not None and time.monotonic() > deadline:
            raise ReportFetchTimeout(
                f"{uri}: not fully read within {timeout_s:g} s ({size} bytes so far)", operation="GetObject"
            )
        chunk = stream.read(min(_READ_CHUNK, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _empty_object(exc: AwsError) -> bool:
    """A ranged GET from byte 0 refused with 416 InvalidRange: the object has no bytes."""
    if exc.code != "InvalidRange":
        return False
    cause = exc.__cause__
    error = getattr(cause, "response", {}).get("Error", {}) if cause is not None else {}
    return str(error.get("ActualObjectSize", "0")) == "0"


def _total_size(response: dict[str, Any], fallback: int) -> int:
    content_range = response.get("ContentRange") or ""
    if "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        if total.isdigit():
            return int(total)
    return int(response.get("ContentLength") or fallback)


def _snake(operation: str) -> str:
    out = []
    for i, ch in enumerate(operation):
        if ch.isupper() and i and not operation[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)
