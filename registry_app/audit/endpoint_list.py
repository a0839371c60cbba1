"""The endpoints list (a read): each live endpoint of the mirror with the version(s) it serves, since
when, that version's approval state and its rollback candidate.

Paged by keyset on ``(name, id)`` and read in three queries whatever the page holds: the endpoints,
their variants (with the open deployment window's start and the rollback candidate's id computed by
subqueries), and the rollback candidates themselves.

The rollback candidate follows the endpoint page's rollback plan (``audit.rollback``): the version
that served the endpoint most recently before (same variant first, then any variant), Approved and
not deleted now; else the highest earlier version of the serving version's group that is Approved and
not deleted. (The plan reads the latest 100 deployment windows; the list reads them all.)
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import BigIntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Lower

from registry_app.models import Endpoint, EndpointDeployment, EndpointVariant, ModelPackage
from registry_app.models.registry import ApprovalStatus

__all__ = ["ENDPOINTS_PAGE_SIZE", "EndpointCursor", "EndpointListPage", "EndpointRow", "ServingRow", "endpoint_list"]

ENDPOINTS_PAGE_SIZE = 50


@dataclass(frozen=True)
class EndpointCursor:
    """The last row of a page: ``(name, id)``; the next page starts after it."""

    name: str
    pk: int

    def encode(self) -> str:
        return base64.urlsafe_b64encode(f"{self.pk}|{self.name}".encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> EndpointCursor:
        """Raises ValueError for anything that is not a cursor this module made."""
        try:
            text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise ValueError("malformed cursor") from exc
        pk, sep, name = text.partition("|")
        if not sep or not pk.isascii() or not pk.isdigit() or len(pk) > 19 or not name or len(name) > 63:
            raise ValueError("malformed cursor")
        if "\x00" in name:
            raise ValueError("malformed cursor")
        return cls(name, int(pk))


@dataclass
class ServingRow:
    variant: EndpointVariant
    package: ModelPackage | None
    since: dt.datetime | None  # start of the open deployment window of this variant, if ingested
    rollback: ModelPackage | None
    status: Any = None  # the serving version's one display status (review.status), set by the view


@dataclass
class EndpointRow:
    endpoint: Endpoint
    serving: list[ServingRow]


@dataclass
class EndpointListPage:
    rows: list[EndpointRow]
    after: EndpointCursor | None  # the next page's cursor (None: this is the last page)
    first: bool


def _windows() -> QuerySet[EndpointDeployment]:
    """The deployment windows of the outer variant's endpoint (any spelling of its name)."""
    return EndpointDeployment.objects.annotate(lname=Lower("endpoint_name")).filter(
        lname=Lower(OuterRef("endpoint__name"))
    )


def _served_before(*, same_variant: bool) -> Subquery:
    """The newest closed window of another version, Approved and not deleted now (``rollback._served_before``)."""
    windows = _windows().filter(
        ended_at__isnull=False,
        package__approval_status=ApprovalStatus.APPROVED,
        package__deleted_at__isnull=True,
    )
    windows = windows.exclude(package_id=OuterRef("package_id"))
    if same_variant:
        windows = windows.filter(variant_name=OuterRef("variant_name"))
    return Subquery(windows.order_by("-started_at", "-pk").values("package_id")[:1])


def _variants(endpoint_ids: list[int]) -> list[EndpointVariant]:
    open_window = (
        _windows()
        .filter(ended_at__isnull=True, variant_name=OuterRef("variant_name"))
        .order_by("-started_at", "-pk")
        .values("started_at")[:1]
    )
    earlier_approved = (
        ModelPackage.objects.filter(
            group_id=OuterRef("package__group_id"),
            version__lt=OuterRef("package__version"),
            approval_status=ApprovalStatus.APPROVED,
            deleted_at__isnull=True,
        )
        .order_by("-version")
        .values("pk")[:1]
    )
    return list(
        EndpointVariant.objects.filter(endpoint_id__in=endpoint_ids)
        .select_related("package__group")
        .defer(
            "package__raw",
            "package__inference_specification",
            "package__model_metrics",
            "package__embedded_card_content",
        )
        .annotate(
            serving_since=Subquery(open_window),
            rollback_id=Coalesce(
                _served_before(same_variant=True),
                _served_before(same_variant=False),
                Subquery(earlier_approved),
                output_field=BigIntegerField(),
            ),
        )
        .order_by("endpoint_id", "variant_name")
    )


def endpoint_list(*, after: EndpointCursor | None = None, limit: int = ENDPOINTS_PAGE_SIZE) -> EndpointListPage:
    """One page of live endpoints by name. Queries: 3 (2 when the page is empty)."""
    qs = Endpoint.objects.filter(deleted_at__isnull=True).select_related("source")
    if after is not None:
        qs = qs.filter(Q(name__gt=after.name) | Q(name=after.name, pk__gt=after.pk))
    endpoints = list(qs.order_by("name", "pk")[: limit + 1])
    more = len(endpoints) > limit
    endpoints = endpoints[:limit]
    if not endpoints:
        return EndpointListPage([], None, after is None)
    variants = _variants([e.pk for e in endpoints])
    rollback_ids = {v.rollback_id for v in variants if v.rollback_id is not None}  # type: ignore[attr-defined]
    rollbacks = (
        ModelPackage.objects.select_related("group")
        .only("pk", "version", "approval_status", "group__name", "group__source_id")
        .in_bulk(rollback_ids)
        if rollback_ids
        else {}
    )
    by_endpoint: dict[int, list[ServingRow]] = {e.pk: [] for e in endpoints}
    for variant in variants:
        by_endpoint[variant.endpoint_id].append(
            ServingRow(
                variant=variant,
                package=variant.package,
                since=variant.serving_since,  # type: ignore[attr-defined]
                rollback=rollbacks.get(variant.rollback_id),  # type: ignore[attr-defined]
            )
        )
    rows = [EndpointRow(endpoint=e, serving=by_endpoint[e.pk]) for e in endpoints]
    last = endpoints[-1]
    return EndpointListPage(rows, EndpointCursor(last.name, last.pk) if more else None, after is None)
