"""Read-only queries behind the sync status page: each source with its newest run, the newest runs.

Like ``selectors``, a fixed number of SQL queries whatever the number of runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import OuterRef, Subquery

from registry_app.models import RegistrySource, SyncRun

RECENT_RUNS_SHOWN = 20


def latest_runs_by_source() -> dict[int, SyncRun]:
    """The newest run of each source, in two queries whatever the number of runs."""
    newest = SyncRun.objects.filter(source=OuterRef("pk")).order_by("-queued_at", "-id").values("pk")[:1]
    run_ids = RegistrySource.objects.annotate(run_id=Subquery(newest)).values_list("run_id", flat=True)
    return {
        run.source_id: run
        for run in SyncRun.objects.filter(pk__in=[r for r in run_ids if r is not None]).select_related("source")
    }


@dataclass(frozen=True)
class ContentChanges:
    """How the incremental pass learns of content-only changes (``mirror.changes``), for the page.

    ``search_denied``: Search is refused to the source's role (``since``, AWS's ``message``), so content
    changes (inference specification, model card, metadata) arrive only through EventBridge events
    (``has_events``) and the nightly full reconciliation. Otherwise ``watermark`` is how far they are
    applied (None before the first pass).
    """

    search_denied: bool
    since: dt.datetime | None
    message: str
    watermark: dt.datetime | None
    has_events: bool


@dataclass
class SourceStatus:
    source: RegistrySource
    last_run: SyncRun | None
    content: ContentChanges | None = None

    def __post_init__(self) -> None:
        source = self.source
        if self.content is None:
            self.content = ContentChanges(
                search_denied=source.search_denied_at is not None,
                since=source.search_denied_at,
                message=source.search_error,
                watermark=source.search_watermark,
                has_events=bool(source.events_queue_url),
            )


@dataclass
class SyncOverview:
    sources: list[SourceStatus]
    recent_runs: list[SyncRun]


def sync_overview() -> SyncOverview:
    """Each source with its newest run, and the newest runs overall. Queries: 4."""
    latest = latest_runs_by_source()
    sources = [SourceStatus(source, latest.get(source.pk)) for source in RegistrySource.objects.order_by("name")]
    recent = list(SyncRun.objects.select_related("source").order_by("-queued_at", "-id")[:RECENT_RUNS_SHOWN])
    return SyncOverview(sources=sources, recent_runs=recent)


def sync_run_for_status(run_id: int) -> SyncRun | None:
    return SyncRun.objects.select_related("source").filter(pk=run_id).first()


def source_by_name(name: str) -> RegistrySource | None:
    return RegistrySource.objects.filter(name=name).first()
