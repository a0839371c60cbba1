"""Endpoint deployment history: which package version each endpoint variant served, from when to when.

Rebuilt (never edited in place) from two sources of evidence:

* the CloudTrail chain ``CreateModel`` (``primaryContainer.modelPackageName``) → ``CreateEndpointConfig``
  (``productionVariants[].modelName``) → ``CreateEndpoint`` / ``UpdateEndpoint`` (``endpointName``,
  ``endpointConfigName``) → ``UpdateEndpointWeightsAndCapacities`` → ``DeleteEndpoint``;
* the mirror (``Endpoint`` / ``EndpointVariant``, from DescribeEndpoint → DescribeEndpointConfig →
  DescribeModel), which knows the *current* state only.

Each ``EndpointDeployment.evidence`` says where every link came from: ``events`` holds the CloudTrail
``eventID`` of each step used, ``mirror`` the observation when the mirror filled a link, and
``missing`` lists each link neither could prove (e.g. a ``CreateModel`` older than CloudTrail's
retention) — those links are left blank rather than guessed.

The windows are computed by ``deployment_chain`` (pure); this module reads the events, writes the
rows and answers what an endpoint served.

Times are the API call times. An ``UpdateEndpoint`` switches traffic when the new fleet is in
service (minutes later, blue/green) and fails asynchronously if the fleet never becomes healthy; when
the mirror still shows the old config after such an update, the open rows carry ``mirror_disagrees``.

Failed calls (``errorCode`` set) are ignored: they changed nothing. Endpoint, config and model names
are matched case-insensitively (SageMaker treats them so; ARNs lower-case them).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q

from registry_app.audit.deployment_chain import (
    DELETE_EVENT,
    DEPLOY_EVENTS,
    WEIGHTS_EVENT,
    Chain,
    ChainEvent,
    MirrorEndpoint,
    MirrorVariant,
    build_segments,
    config_variants,
)
from registry_app.audit.event_keys import ENDPOINT, ENDPOINT_CONFIG, MODEL, ci_get, ci_str
from registry_app.mirror.package_refs import lookup_arns, package_index, package_ref, resolve_package
from registry_app.models import (
    CloudTrailEvent,
    Endpoint,
    EndpointDeployment,
    EndpointVariant,
    ModelPackage,
    RegistrySource,
)
from registry_app.models.audit import endpoint_name_is

log = logging.getLogger(__name__)

_FIELDS = ("pk", "event_id", "event_time", "event_name", "resource_name", "raw", "aws_region", "account_id")


@dataclass
class RebuildResult:
    endpoints: list[str] = field(default_factory=list)
    rows: int = 0


def _chain_event(row: CloudTrailEvent) -> ChainEvent:
    raw = row.raw if isinstance(row.raw, dict) else {}
    request = ci_get(raw, "requestParameters")
    response = ci_get(raw, "responseElements")
    return ChainEvent(
        event_id=row.event_id,
        time=row.event_time,
        name=row.event_name,
        request=request if isinstance(request, dict) else {},
        response=response if isinstance(response, dict) else {},
        region=row.aws_region,
        account=row.account_id,
        pk=row.pk,
    )


def _successful(qs: Any) -> Any:
    return qs.filter(error_code="").only(*_FIELDS)


def _by_name(rows: Iterable[CloudTrailEvent], names: set[str]) -> dict[str, list[ChainEvent]]:
    out: dict[str, list[ChainEvent]] = {}
    for row in rows:
        key = row.resource_name.lower()
        if key in names:
            out.setdefault(key, []).append(_chain_event(row))
    return out


def _name_variants(names: Iterable[str]) -> list[str]:
    return sorted({variant for name in names if name for variant in (name, name.lower())})


def _mirror(source: RegistrySource | None, endpoint_name: str) -> MirrorEndpoint | None:
    qs = Endpoint.objects.filter(name__iexact=endpoint_name).prefetch_related("variants")
    if source is not None:
        qs = qs.filter(source=source)
    endpoint = qs.order_by("deleted_at", "-last_modified_at").first()  # a live one first
    if endpoint is None:
        return None
    return MirrorEndpoint(
        name=endpoint.name,
        config_name=endpoint.config_name,
        variants=tuple(
            MirrorVariant(v.variant_name, v.model_name, v.package_arn, v.weight) for v in endpoint.variants.all()
        ),
        created_at=endpoint.created_at,
        last_modified_at=endpoint.last_modified_at,
        first_seen_at=endpoint.first_seen_at,
        deleted_at=endpoint.deleted_at,
    )


def _mirror_models(source: RegistrySource | None) -> dict[str, MirrorVariant]:
    qs = EndpointVariant.objects.exclude(package_arn="")
    if source is not None:
        qs = qs.filter(endpoint__source=source)
    return {
        v.model_name.lower(): MirrorVariant(v.variant_name, v.model_name, v.package_arn, v.weight)
        for v in qs.only("variant_name", "model_name", "package_arn", "weight")
    }


def rebuild_endpoint(source: RegistrySource | None, endpoint_name: str) -> int:
    """Recompute one endpoint's EndpointDeployment rows (delete + insert in one transaction)."""
    events_qs = CloudTrailEvent.objects.filter(
        endpoint_name_is(endpoint_name),
        resource_type=ENDPOINT,
        event_name__in=[*DEPLOY_EVENTS, WEIGHTS_EVENT, DELETE_EVENT],
    )
    if source is not None:
        events_qs = events_qs.filter(source=source)
    endpoint_events = [_chain_event(row) for row in _successful(events_qs)]
    config_names = {ci_str(e.request, "endpointConfigName").lower() for e in endpoint_events} - {""}
    mirror = _mirror(source, endpoint_name)
    if mirror is not None and mirror.config_name:
        config_names.add(mirror.config_name.lower())
    config_qs = CloudTrailEvent.objects.filter(
        resource_type=ENDPOINT_CONFIG,
        event_name="CreateEndpointConfig",
        resource_name__in=_name_variants(config_names),
    )
    if source is not None:
        config_qs = config_qs.filter(source=source)
    configs = _by_name(_successful(config_qs), config_names)
    model_names = {m.lower() for events in configs.values() for e in events for _, m, _ in config_variants(e)} - {""}
    model_qs = CloudTrailEvent.objects.filter(
        resource_type=MODEL, event_name="CreateModel", resource_name__in=_name_variants(model_names)
    )
    if source is not None:
        model_qs = model_qs.filter(source=source)
    models = _by_name(_successful(model_qs), model_names)
    chain = Chain(configs, models, _mirror_models(source), mirror)
    segments = build_segments(endpoint_events, chain, mirror)
    name = mirror.name if mirror is not None else _spelling(endpoint_events, endpoint_name)
    # The same resolution as the endpoint sync's (mirror.package_refs), so the two never disagree.
    qualify = {"region": source.region, "account": source.account_id} if source is not None else {}
    refs = [package_ref(s.package_arn, **qualify) for s in segments]
    index = package_index(ModelPackage.objects.filter(arn__in=lookup_arns(refs)).values_list("pk", "arn"))
    resolved = [resolve_package(ref, index) for ref in refs]
    rows = [
        EndpointDeployment(
            source=source,
            endpoint_name=name[:63],
            variant_name=s.variant_name[:63],
            config_name=s.config_name[:63],
            model_name=s.model_name[:63],
            package_arn=found.arn,
            package_id=found.package_id,
            weight=s.weight,
            started_at=s.started_at,
            ended_at=s.ended_at,
            evidence=s.evidence,
        )
        for s, found in zip(segments, resolved, strict=True)
    ]
    with transaction.atomic():
        stale = EndpointDeployment.objects.filter(endpoint_name_is(endpoint_name))
        if source is not None:
            stale = stale.filter(source=source)
        stale.delete()
        EndpointDeployment.objects.bulk_create(rows)
    return len(rows)


def _spelling(events: list[ChainEvent], fallback: str) -> str:
    for event in sorted(events, key=lambda e: (e.time, e.pk), reverse=True):
        name = ci_str(event.request, "endpointName")
        if name:
            return name
    return fallback


def _targets(endpoint_name: str | None, source: RegistrySource | None) -> dict[tuple[int | None, str], str]:
    """(source id, lower-cased endpoint name) → a spelling, from CloudTrail and the mirror."""
    targets: dict[tuple[int | None, str], str] = {}
    events = CloudTrailEvent.objects.filter(resource_type=ENDPOINT).exclude(endpoint_name="")
    mirror = Endpoint.objects.all()
    if endpoint_name:
        events = events.filter(endpoint_name_is(endpoint_name))
        mirror = mirror.filter(name__iexact=endpoint_name)
    if source is not None:
        events = events.filter(source=source)
        mirror = mirror.filter(source=source)
    for source_id, name in events.values_list("source_id", "endpoint_name").distinct():
        targets.setdefault((source_id, name.lower()), name)
    for source_id, name in mirror.values_list("source_id", "name"):
        targets[(source_id, name.lower())] = name
    return targets


def rebuild_deployments(endpoint_name: str | None = None, *, source: RegistrySource | None = None) -> RebuildResult:
    """Rebuild EndpointDeployment rows for one endpoint (any source) or for every endpoint known."""
    result = RebuildResult()
    sources = {s.pk: s for s in RegistrySource.objects.all()}
    for (source_id, _), name in sorted(_targets(endpoint_name, source).items(), key=lambda i: (i[0][0] or 0, i[0][1])):
        result.rows += rebuild_endpoint(sources.get(source_id) if source_id else None, name)
        result.endpoints.append(name)
    return result


def rebuild_after_ingest(
    source: RegistrySource, *, endpoints: Iterable[str] = (), configs: Iterable[str] = (), models: Iterable[str] = ()
) -> list[str]:
    """Rebuild the endpoints new events touched, plus those whose mirror no longer matches their rows.

    Touched: endpoints named by new events, endpoints whose rows use a config or model a new event
    created (a late-arriving CreateModel can fill a missing link), and mirrored endpoints whose
    current variants differ from their open rows (the endpoint sync saw a change).
    """
    names = {name.lower(): name for name in endpoints if name}
    configs, models = list(configs), list(models)
    if configs or models:
        rows = EndpointDeployment.objects.filter(source=source).filter(
            Q(config_name__in=_name_variants(configs)) | Q(model_name__in=_name_variants(models))
        )
        for name in rows.values_list("endpoint_name", flat=True).distinct():
            names.setdefault(name.lower(), name)
    for name in _drifted(source):
        names.setdefault(name.lower(), name)
    for name in sorted(names.values()):
        try:
            rebuild_endpoint(source, name)
        except Exception:  # noqa: BLE001 - one endpoint's history must not stop the others
            log.exception("rebuilding deployments of %s failed", name)
    return sorted(names.values())


def _drifted(source: RegistrySource) -> list[str]:
    """Mirrored endpoints whose live variants (or deletion) are not what their open rows say."""
    open_rows: dict[str, set[tuple[str, str]]] = {}
    for name, variant, arn in EndpointDeployment.objects.filter(source=source, ended_at__isnull=True).values_list(
        "endpoint_name", "variant_name", "package_arn"
    ):
        open_rows.setdefault(name.lower(), set()).add((variant, arn.lower()))
    drifted = []
    for endpoint in Endpoint.objects.filter(source=source).prefetch_related("variants"):
        live = (
            set() if endpoint.deleted_at else {(v.variant_name, v.package_arn.lower()) for v in endpoint.variants.all()}
        )
        if open_rows.get(endpoint.name.lower(), set()) != live:
            drifted.append(endpoint.name)
    return drifted


def deployments_at(
    endpoint_name: str, at: dt.datetime, *, source: RegistrySource | None = None
) -> list[EndpointDeployment]:
    """What ``endpoint_name`` served at ``at``: one row per variant (package, weight, evidence). One query."""
    qs = (
        EndpointDeployment.objects.filter(endpoint_name_is(endpoint_name), started_at__lte=at)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=at))
        .select_related("package__group")
        .order_by("variant_name", "-started_at")
    )
    if source is not None:
        qs = qs.filter(source=source)
    return list(qs)


def deployment_history(endpoint_name: str, *, source: RegistrySource | None = None) -> list[EndpointDeployment]:
    """Every window of an endpoint, newest first. One query."""
    qs = EndpointDeployment.objects.filter(endpoint_name_is(endpoint_name)).select_related("package__group")
    if source is not None:
        qs = qs.filter(source=source)
    return list(qs.order_by("-started_at", "variant_name"))
