"""Content changes the package listing cannot see, found with Search from a watermark.

``UpdateModelPackage`` can change ``InferenceSpecification``, ``ModelCard``, ``SourceUri``,
``AdditionalInferenceSpecificationsToAdd`` and ``CustomerMetadataProperties`` without touching anything
``ListModelPackages`` returns (status, description, package status, life-cycle stage). So the incremental
pass also asks ``Search(Resource=ModelPackage)`` for the packages whose ``LastModifiedTime`` is at or after
the source's watermark minus ``SEARCH_MARGIN``, oldest change first, 100 full records a call
(⌈changed/100⌉ calls; one when nothing changed), and applies the records as they are (no Describe).

The watermark (``RegistrySource.search_watermark``) is the newest ``LastModifiedTime`` applied. It moves
after each page's packages committed, and never back. The margin re-reads the last minutes before it on
every pass: Search's index can lag behind the registry, and a change it did not show yet still has a
``LastModifiedTime`` within the margin when it appears (a re-read record is unchanged: no write). A full
reconciliation that reconciled every group moves the watermark to its own start (minus nothing: the
margin is applied when searching).

Where Search is denied (or refused), the source records it (shown on ``/sync/``) and content changes
arrive through EventBridge events and the nightly full reconciliation; the listing pass goes on as before.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db.models import Max, Q
from django.utils import timezone

from registry_app.aws.errors import AccessDeniedError, AwsError, ValidationError
from registry_app.mirror import mapping as sync
from registry_app.mirror.apply import PackageWriter
from registry_app.mirror.fetch import record_bundles
from registry_app.models import ModelPackage, RegistrySource

log = logging.getLogger(__name__)

# How far before the watermark each pass searches again: longer than Search's index normally lags behind
# the registry, and than the skew between AWS's clock and ours (a full pass's watermark is our clock).
SEARCH_MARGIN = dt.timedelta(minutes=5)


def search_changes(writer: PackageWriter) -> None:
    """Apply every package Search shows changed since the watermark (see the module docstring)."""
    source = writer.source
    since = search_since(source)
    try:
        for page in writer.client.iter_search_package_pages(modified_since=since):
            records = [r for r in page if r.get("ModelPackageArn") and r.get("ModelPackageVersion") is not None]
            writer.count("search_records", len(records))
            if records:
                known = writer._known_reports([str(r["ModelPackageArn"]) for r in records])
                writer._apply_batch(
                    list(record_bundles(writer.client, records, known, source_name=source.name, refetch_failed=False))
                )
            # Every record of the page is handled (applied, or recorded as malformed: reading it again
            # would not help), so the watermark may pass all of them.
            advance_watermark(source, newest_change(page))
    except (AccessDeniedError, ValidationError) as exc:
        search_unavailable(writer, exc)
        return
    except AwsError as exc:
        # Throttled or failed beyond botocore's retries: the watermark stays after the last committed page.
        writer.error("Search (content changes)", str(exc))
        return
    if source.search_watermark is None and since is not None:
        # A source synced before there was a watermark, and nothing changed since: start one here.
        advance_watermark(source, since + SEARCH_MARGIN)
    search_available(source)


def search_since(source: RegistrySource) -> dt.datetime | None:
    """Where this pass's Search starts: the watermark minus the margin. A source synced before there was a
    watermark starts from the newest change the mirror holds; an empty mirror searches everything."""
    mark = source.search_watermark
    if mark is None:
        mark = ModelPackage.objects.filter(source=source).aggregate(newest=Max("last_modified_at"))["newest"]
    return mark - SEARCH_MARGIN if mark is not None else None


def newest_change(records: list[dict[str, Any]]) -> dt.datetime | None:
    times = []
    for record in records:
        try:
            when = sync.parse_time(record.get("LastModifiedTime"))
        except sync.RecordError:
            continue
        if when is not None:
            times.append(when)
    return max(times, default=None)


def advance_watermark(source: RegistrySource, when: dt.datetime | None) -> None:
    """Move the watermark forward to ``when`` (a conditional UPDATE: never back, whoever wrote last)."""
    if when is None:
        return
    moved = (
        RegistrySource.objects.filter(pk=source.pk)
        .filter(Q(search_watermark__isnull=True) | Q(search_watermark__lt=when))
        .update(search_watermark=when)
    )
    if moved:
        source.search_watermark = when


def search_unavailable(writer: PackageWriter, exc: AwsError) -> None:
    """Search denied or refused: said on the source (``/sync/``), counted on the run; not a run error."""
    writer.count("search_unavailable")
    log.info("sync %s: Search unavailable: %s", writer.source.name, exc)
    source = writer.source
    message = str(exc)[:500]
    if source.search_denied_at is None or source.search_error != message:
        source.search_denied_at = source.search_denied_at or timezone.now()
        source.search_error = message
        RegistrySource.objects.filter(pk=source.pk).update(
            search_denied_at=source.search_denied_at, search_error=message
        )


def search_available(source: RegistrySource) -> None:
    if source.search_denied_at is not None or source.search_error:
        source.search_denied_at, source.search_error = None, ""
        RegistrySource.objects.filter(pk=source.pk).update(search_denied_at=None, search_error="")
