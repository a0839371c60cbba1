"""The endpoint page's reads: which endpoint a name means, its current variants, its deployment windows
(newest first) and its rollback candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import F
from django.utils import timezone

from registry_app.audit.as_of_status import RollbackCandidate, rollback_candidate
from registry_app.models import CloudTrailEvent, Endpoint, EndpointDeployment, EndpointVariant, ModelPackage
from registry_app.models.audit import endpoint_name_is

__all__ = ["ENDPOINT_HISTORY_SHOWN", "EndpointOverview", "endpoint_overview", "pick_endpoint"]


def pick_endpoint(name: str) -> Endpoint | None:
    return (
        Endpoint.objects.filter(name__iexact=name)
        .select_related("source")
        .order_by(F("deleted_at").desc(nulls_first=True))
        .first()
    )


@dataclass
class EndpointOverview:
    name: str
    endpoint: Endpoint | None
    variants: list[EndpointVariant]
    history: list[EndpointDeployment]
    more_history: bool
    rollback: RollbackCandidate | None
    rollback_for: ModelPackage | None


ENDPOINT_HISTORY_SHOWN = 100


def endpoint_overview(name: str) -> EndpointOverview | None:
    """An endpoint's current variants, deployment windows (newest first) and rollback candidate;
    None when nothing at all is known about it."""
    endpoint = pick_endpoint(name)
    variants = (
        list(
            EndpointVariant.objects.filter(endpoint=endpoint).select_related("package__group").order_by("variant_name")
        )
        if endpoint
        else []
    )
    history = list(
        EndpointDeployment.objects.filter(endpoint_name_is(name))
        .select_related("package__group")
        .order_by("-started_at", "-pk")[: ENDPOINT_HISTORY_SHOWN + 1]
    )
    if endpoint is None and not history and not CloudTrailEvent.objects.filter(endpoint_name_is(name)).exists():
        return None
    serving = [v.package for v in variants if v.package is not None]
    if not serving:
        serving = [d.package for d in history if d.ended_at is None and d.package is not None]
    primary = max(
        serving,
        key=lambda p: max((v.weight or 0.0) for v in variants if v.package_id == p.pk) if variants else 0.0,
        default=None,
    )
    rollback = rollback_candidate(primary, timezone.now()) if primary is not None else None
    return EndpointOverview(
        name=name,
        endpoint=endpoint,
        variants=variants,
        history=history[:ENDPOINT_HISTORY_SHOWN],
        more_history=len(history) > ENDPOINT_HISTORY_SHOWN,
        rollback=rollback,
        rollback_for=primary,
    )
