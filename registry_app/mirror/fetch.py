"""What the sync's worker threads fetch: a package's DescribeModelPackage record and its reports.

AWS only, no database: Describe (or a Search page) and the report GETs run on ``SYNC_THREADS`` threads,
and each package comes back as a ``Bundle`` that ``reconcile`` applies on the calling thread. A report is
fetched only when its URI or digest changed (or, where asked, when its last fetch failed).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from registry_app.aws.errors import AwsError, NotFoundError
from registry_app.aws.sagemaker import RegistryClient, ReportTooLarge, UnsupportedUri
from registry_app.mirror import aws_requests
from registry_app.mirror import mapping as sync
from registry_app.mirror.reports.parse import parse_report, verify_content_digest
from registry_app.mirror.reports.values import ReportParseError
from registry_app.models import EvaluationReport


@dataclass
class FetchedReport:
    ref: sync.MetricsSourceRef
    status: str
    sha256: str = ""
    size: int | None = None
    error: str = ""
    parsed: Any = None  # registry_app.mirror.reports.values.ParsedReport
    document: Any = None


@dataclass
class Bundle:
    arn: str
    record: dict[str, Any] | None = None
    reports: list[FetchedReport] = field(default_factory=list)
    error: str = ""
    failure: AwsError | None = None  # the AWS error that kept the record from being read (not "gone")


@dataclass(frozen=True)
class KnownReport:
    s3_uri: str
    content_digest: str
    status: str


def fetch_report(client: RegistryClient, ref: sync.MetricsSourceRef) -> FetchedReport:
    """GET and parse one report. Never raises: every failure becomes a status + message."""
    if not ref.is_json:
        return FetchedReport(ref, EvaluationReport.Status.SKIPPED, error=f"content type {ref.content_type!r}")
    try:
        obj = client.get_object(
            ref.s3_uri, max_bytes=settings.REPORT_MAX_BYTES, timeout_s=settings.REPORT_FETCH_SECONDS
        )
    except ReportTooLarge as exc:
        return FetchedReport(ref, EvaluationReport.Status.TOO_LARGE, error=str(exc))
    except UnsupportedUri as exc:
        return FetchedReport(ref, EvaluationReport.Status.FETCH_ERROR, error=str(exc))
    except AwsError as exc:
        return FetchedReport(ref, EvaluationReport.Status.FETCH_ERROR, error=str(exc))
    result = FetchedReport(ref, EvaluationReport.Status.OK, sha256=obj.sha256, size=obj.size)
    if not obj.body:
        # A 0-byte object (S3 answers the ranged GET with 416, which the adapter returns as empty bytes):
        # the report is there and empty, not malformed. Said so, apart from a parse error.
        result.status = EvaluationReport.Status.EMPTY
        result.error = "the report object is empty (0 bytes)"
        return result
    if ref.content_digest:
        verdict = verify_content_digest(obj.body, ref.content_digest)
        if verdict is False:
            result.status = EvaluationReport.Status.DIGEST_MISMATCH
            result.error = f"ContentDigest {ref.content_digest} does not match the fetched object (sha256 {obj.sha256})"
            return result
    try:
        result.parsed = parse_report(obj.body)
        result.document = result.parsed.document
    except ReportParseError as exc:
        result.status = EvaluationReport.Status.PARSE_ERROR
        result.error = str(exc)
    return result


def reports_to_fetch(
    record: dict[str, Any], known: dict[str, KnownReport], *, refetch_failed: bool
) -> list[sync.MetricsSourceRef]:
    """The reports of ``record`` whose URI or digest changed since ``known`` (and, with ``refetch_failed``,
    those whose last fetch failed)."""
    wanted = []
    for ref in sync.metrics_sources(record.get("ModelMetrics")):
        prior = known.get(ref.slot)
        if (
            prior is None
            or prior.s3_uri != ref.s3_uri
            or prior.content_digest != ref.content_digest
            or (refetch_failed and prior.status == EvaluationReport.Status.FETCH_ERROR)
        ):
            wanted.append(ref)
    return wanted


def describe_bundles(
    client: RegistryClient,
    arns: list[str],
    known: dict[str, dict[str, KnownReport]],
    *,
    source_name: str,
    refetch_failed: bool = False,
) -> Iterator[Bundle]:
    """Describe each package and fetch its changed reports on the thread pool (a vanished one: ``"gone"``)."""

    def job(arn: str) -> Bundle:
        try:
            record = client.describe_package(arn)
        except NotFoundError:
            return Bundle(arn, error="gone")  # deleted between listing and describe
        except AwsError as exc:
            return Bundle(arn, error=str(exc), failure=exc)
        refs = reports_to_fetch(record, known.get(arn.lower(), {}), refetch_failed=refetch_failed)
        return Bundle(arn, record, [fetch_report(client, ref) for ref in refs])

    yield from parallel(job, arns, source_name=source_name)


def record_bundles(
    client: RegistryClient,
    records: Iterable[dict[str, Any]],
    known: dict[str, dict[str, KnownReport]],
    *,
    source_name: str,
    refetch_failed: bool,
) -> Iterator[Bundle]:
    """Full records already read (Search), with their changed reports fetched on the thread pool."""

    def job(record: dict[str, Any]) -> Bundle:
        arn = record["ModelPackageArn"]
        refs = reports_to_fetch(record, known.get(arn.lower(), {}), refetch_failed=refetch_failed)
        return Bundle(arn, record, [fetch_report(client, ref) for ref in refs])

    yield from parallel(job, records, source_name=source_name)


def search_bundles(
    client: RegistryClient,
    known: dict[str, dict[str, KnownReport]],
    seen: set[str],
    *,
    group: str,
    source_name: str,
) -> Iterator[Bundle]:
    """Search one group's packages (full records, no Describe) and fetch their changed reports; every
    ARN the search returned is added to ``seen`` (lower-cased).

    Sorted by ``CreationTime``: it never changes, so the walk's order holds while packages are updated
    during it (``LastModifiedTime``, Search's default, moves a package updated mid-walk from one page to
    another). Search's index may also lag; a package it leaves out is confirmed by Describe before it is
    marked deleted (``apply.PackageWriter._mark_vanished_packages``).
    """

    def records() -> Iterator[dict[str, Any]]:
        for page in aws_requests.search_package_pages(client, group=group, sort_by="CreationTime"):
            for record in page:
                # The filter is the API's; a record of another group is not this shard's to apply.
                if (
                    record.get("ModelPackageArn")
                    and record.get("ModelPackageVersion") is not None
                    and record.get("ModelPackageGroupName") == group
                ):
                    seen.add(record["ModelPackageArn"].lower())
                    yield record

    yield from record_bundles(client, records(), known, source_name=source_name, refetch_failed=True)


def parallel(job: Any, items: Iterable[Any], *, source_name: str) -> Iterator[Bundle]:
    """Run ``job`` over items on SYNC_THREADS threads, yielding results in submission order.

    At most 4×threads jobs are in flight, so memory stays flat however many packages there are.
    """
    threads = max(1, settings.SYNC_THREADS)
    window: list[Future[Bundle]] = []
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"sync-{source_name}") as pool:
        for item in items:
            window.append(pool.submit(job, item))
            if len(window) >= threads * 4:
                yield window.pop(0).result()
        while window:
            yield window.pop(0).result()
