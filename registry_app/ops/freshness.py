"""When each enabled registry source last synced successfully: shared by /readyz and /metrics."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import OuterRef, Subquery

from registry_app.models import RegistrySource, SyncRun

# A registry sync that listed the registry: incremental or full. "partial" (some packages failed,
# recorded on the run) still refreshed the rest; event, endpoint and single-package runs do not
# prove the mirror is current.
REGISTRY_MODES = (SyncRun.Mode.INCREMENTAL, SyncRun.Mode.FULL)
SUCCESS_STATUSES = (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL)


@dataclass(frozen=True)
class SourceFreshness:
    pk: int
    name: str
    created_at: dt.datetime
    last_success_at: dt.datetime | None

    def lag_seconds(self, now: dt.datetime) -> float:
        """Seconds the mirror may be behind: since the last successful sync, or since the source was added."""
        return max(0.0, (now - (self.last_success_at or self.created_at)).total_seconds())


def source_freshness() -> list[SourceFreshness]:
    """Every enabled source with its last successful registry sync, by name. One query.

    The newest successful run is found through the ``(source, -queued_at)`` index, so the cost
    does not grow with the number of runs kept.
    """
    newest_success = (
        SyncRun.objects.filter(
            source=OuterRef("pk"),
            mode__in=REGISTRY_MODES,
            status__in=SUCCESS_STATUSES,
            finished_at__isnull=False,
        )
        .order_by("-queued_at")  # exactly the index's order (a tie-breaker would make PostgreSQL sort)
        .values("finished_at")[:1]
    )
    rows = (
        RegistrySource.objects.filter(enabled=True)
        .annotate(last_success_at=Subquery(newest_success))
        .order_by("name")
        .values_list("pk", "name", "created_at", "last_success_at")
    )
    return [SourceFreshness(pk, name, created, last) for pk, name, created, last in rows]
