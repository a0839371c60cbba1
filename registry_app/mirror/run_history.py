"""Past sync runs (a read): the runs list, newest first, paged by keyset on the run id, and one run.

A run's errors stay readable here after later runs replace it on the sync status page.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from registry_app.models import RegistrySource, SyncRun

__all__ = ["RUNS_PAGE_SIZE", "WITH_ERRORS", "RunFilters", "RunPage", "run_detail", "run_list", "source_names"]

RUNS_PAGE_SIZE = 50
WITH_ERRORS = "errors"  # the status filter for runs that ended with errors (partial or failed)


@dataclass(frozen=True)
class RunFilters:
    source: str = ""  # a RegistrySource name; "" for every source
    status: str = ""  # a SyncRun.Status value, WITH_ERRORS, or "" for any
    before: int | None = None  # show runs with a smaller id (older) than this


@dataclass
class RunPage:
    runs: list[SyncRun]
    older: int | None  # the next page's ``before`` (None: this is the last page)
    filters: RunFilters


def _runs(filters: RunFilters) -> QuerySet[SyncRun]:
    qs = SyncRun.objects.select_related("source")
    if filters.source:
        qs = qs.filter(source__name=filters.source)
    if filters.status == WITH_ERRORS:
        qs = qs.filter(status__in=[SyncRun.Status.PARTIAL, SyncRun.Status.FAILED])
    elif filters.status:
        qs = qs.filter(status=filters.status)
    return qs


def run_list(filters: RunFilters, *, limit: int = RUNS_PAGE_SIZE) -> RunPage:
    """One page of runs, newest first (ids grow with ``queued_at``). One query, no COUNT, no OFFSET."""
    qs = _runs(filters)
    if filters.before is not None:
        qs = qs.filter(pk__lt=filters.before)
    runs = list(qs.order_by("-pk")[: limit + 1])
    more = len(runs) > limit
    runs = runs[:limit]
    return RunPage(runs, runs[-1].pk if more else None, filters)


def run_detail(run_id: int) -> SyncRun | None:
    return SyncRun.objects.select_related("source").filter(pk=run_id).first()


def source_names() -> list[str]:
    return list(RegistrySource.objects.order_by("name").values_list("name", flat=True))
