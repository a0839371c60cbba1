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

from registry_app.audit import events as ct
from registry_app.models import CloudTrailEvent, Endpoint, EndpointDeployment, ModelPackage, RegistrySource
from registry_app.models.audit import endpoint_name_is

log = logging.getLogger(__name__)

DEPLOY_EVENTS = ("CreateEndpoint", "UpdateEndpoint")
WEIGHTS_EVENT = "UpdateEndpointWeightsAndCapacities"
DELETE_EVENT = "DeleteEndpoint"
_FIELDS = ("pk", "event_id", "event_time", "event_name", "resource_name", "raw", "aws_region", "account_id")
RETENTION_HINT = "not in the ingested CloudTrail (older than its retention, or not ingested yet)"


# ---------------------------------------------------------------------------------------------- pure part


@dataclass(frozen=True)
class ChainEvent:
    """The parts of a stored CloudTrail event the chain needs."""

    event_id: str
    time: dt.datetime
    name: str
    request: dict[str, Any]
    response: dict[str, Any]
    region: str = ""
    account: str = ""
    pk: int = 0


@dataclass(frozen=True)
class MirrorVariant:
    variant_name: str
    model_name: str
    package_arn: str
    weight: float | None


@dataclass(frozen=True)
class MirrorEndpoint:
    name: str
    config_name: str
    variants: tuple[MirrorVariant, ...]
    created_at: dt.datetime | None
    last_modified_at: dt.datetime | None
    first_seen_at: dt.datetime
    deleted_at: dt.datetime | None


@dataclass
class Segment:
    variant_name: str
    config_name: str
    model_name: str
    package_arn: str
    weight: float | None
    started_at: dt.datetime
    ended_at: dt.datetime | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


def _latest_before(events: list[ChainEvent], at: dt.datetime) -> ChainEvent | None:
    """The latest event at or before ``at`` (names can be reused after a delete)."""
    best = None
    for event in events:
        if event.time <= at and (best is None or (event.time, event.pk) > (best.time, best.pk)):
            best = event
    return best


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def config_variants(event: ChainEvent) -> list[tuple[str, str, float | None]]:
    """(variant, model, initial weight) of a CreateEndpointConfig event."""
    out = []
    for variant in ct.ci_get(event.request, "productionVariants") or []:
        if isinstance(variant, dict):
            out.append(
                (
                    ct.ci_str(variant, "variantName"),
                    ct.ci_str(variant, "modelName"),
                    _float(ct.ci_get(variant, "initialVariantWeight")),
                )
            )
    return out


def model_package_arn(event: ChainEvent) -> str:
    """The registry package a CreateModel event deployed (ARN; built from ``group/version`` names)."""
    for name in ct.model_package_names(event.request):
        ref = ct.package_ref(name, region=event.region, account=event.account)
        if ref.arn or ref.name:
            return ref.arn or ref.name
    return ""


class Chain:
    """Resolves config → variants → model → package at a point in time, noting each missing link."""

    def __init__(
        self,
        configs: dict[str, list[ChainEvent]],
        models: dict[str, list[ChainEvent]],
        mirror_models: dict[str, MirrorVariant],
        mirror: MirrorEndpoint | None,
    ) -> None:
        self.configs = configs
        self.models = models
        self.mirror_models = mirror_models
        self.mirror = mirror

    def _mirror_config(self, config_name: str) -> bool:
        return bool(self.mirror and self.mirror.config_name.lower() == config_name.lower() and self.mirror.variants)

    def segments(self, config_name: str, at: dt.datetime, base: dict[str, Any]) -> list[Segment]:
        config_event = _latest_before(self.configs.get(config_name.lower(), []), at)
        if config_event is None:
            if self._mirror_config(config_name):
                assert self.mirror is not None
                return [
                    self._segment_from_mirror_variant(variant, config_name, at, base)
                    for variant in self.mirror.variants
                ]
            evidence = _evidence(base, missing=[f"CreateEndpointConfig {config_name}: {RETENTION_HINT}"])
            return [Segment("", config_name, "", "", None, at, evidence=evidence)]
        out = []
        for variant, model, weight in config_variants(config_event):
            events = {**base.get("events", {}), "config": config_event.event_id}
            out.append(self._resolve_model(variant, model, weight, config_name, at, {**base, "events": events}))
        if not out:
            evidence = _evidence(
                {**base, "events": {**base.get("events", {}), "config": config_event.event_id}},
                missing=[f"CreateEndpointConfig {config_name}: no productionVariants in the record"],
            )
            out.append(Segment("", config_name, "", "", None, at, evidence=evidence))
        return out

    def _resolve_model(
        self, variant: str, model: str, weight: float | None, config_name: str, at: dt.datetime, base: dict[str, Any]
    ) -> Segment:
        model_event = _latest_before(self.models.get(model.lower(), []), at) if model else None
        if model_event is not None:
            arn = model_package_arn(model_event)
            events = {**base.get("events", {}), "model": model_event.event_id}
            missing = [] if arn else [f"CreateModel {model}: no modelPackageName (not deployed from the registry)"]
            return Segment(
                variant,
                config_name,
                model,
                arn,
                weight,
                at,
                evidence=_evidence({**base, "events": events}, missing=missing),
            )
        known = self.mirror_models.get(model.lower()) if model else None
        if known is not None and known.package_arn:
            evidence = _evidence(
                base,
                missing=[f"CreateModel {model}: {RETENTION_HINT}"],
                mirror={"model": model, "package_arn": known.package_arn, "via": "DescribeModel"},
            )
            return Segment(variant, config_name, model, known.package_arn, weight, at, evidence=evidence)
        evidence = _evidence(base, missing=[f"CreateModel {model or '(no model name)'}: {RETENTION_HINT}"])
        return Segment(variant, config_name, model, "", weight, at, evidence=evidence)

    def _segment_from_mirror_variant(
        self, variant: MirrorVariant, config_name: str, at: dt.datetime, base: dict[str, Any]
    ) -> Segment:
        assert self.mirror is not None
        evidence = _evidence(
            base,
            missing=[f"CreateEndpointConfig {config_name}: {RETENTION_HINT}"],
            mirror=_mirror_note(self.mirror),
        )
        return Segment(
            variant.variant_name,
            config_name,
            variant.model_name,
            variant.package_arn,
            variant.weight,
            at,
            evidence=evidence,
        )


def _evidence(
    base: dict[str, Any], *, missing: list[str] | None = None, mirror: dict[str, Any] | None = None
) -> dict[str, Any]:
    out = {
        key: (dict(value) if isinstance(value, dict) else list(value) if isinstance(value, list) else value)
        for key, value in base.items()
    }
    if missing:
        out["missing"] = [*out.get("missing", []), *missing]
    if mirror:
        out["mirror"] = mirror
    return out


def _mirror_note(mirror: MirrorEndpoint) -> dict[str, Any]:
    return {
        "config_name": mirror.config_name,
        "endpoint_last_modified": _iso(mirror.last_modified_at),
        "first_observed": _iso(mirror.first_seen_at),
        "via": "DescribeEndpoint/DescribeEndpointConfig/DescribeModel",
    }


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value else None


def _close(open_rows: dict[str, Segment], at: dt.datetime, out: list[Segment], ended_by: str = "") -> None:
    for segment in open_rows.values():
        segment.ended_at = at
        if ended_by:
            segment.evidence["ended_by"] = ended_by
        out.append(segment)
    open_rows.clear()


def build_segments(
    endpoint_events: list[ChainEvent],
    chain: Chain,
    mirror: MirrorEndpoint | None,
) -> list[Segment]:
    """The deployment windows of one endpoint (pure; see the module docstring)."""
    out: list[Segment] = []
    open_rows: dict[str, Segment] = {}
    last_deploy: ChainEvent | None = None
    for event in sorted(endpoint_events, key=lambda e: (e.time, e.pk)):
        if event.name in DEPLOY_EVENTS:
            config_name = ct.ci_str(event.request, "endpointConfigName")
            _close(open_rows, event.time, out, event.event_id)
            base = {"source": "cloudtrail", "events": {"endpoint": event.event_id}, "deployed_by": event.name}
            if not config_name:
                segment = Segment(
                    "",
                    "",
                    "",
                    "",
                    None,
                    event.time,
                    evidence=_evidence(base, missing=[f"{event.name}: no endpointConfigName in the record"]),
                )
                open_rows[""] = segment
            else:
                for index, segment in enumerate(chain.segments(config_name, event.time, base)):
                    open_rows[segment.variant_name or f"#{index}"] = segment
            last_deploy = event
        elif event.name == WEIGHTS_EVENT:
            for desired in ct.ci_get(event.request, "desiredWeightsAndCapacities") or []:
                name = ct.ci_str(desired, "variantName")
                weight = _float(ct.ci_get(desired, "desiredWeight"))
                current = open_rows.get(name)
                if current is None or weight is None or weight == current.weight:
                    continue
                current.ended_at = event.time
                current.evidence["ended_by"] = event.event_id
                out.append(current)
                evidence = _evidence(current.evidence)
                evidence.pop("ended_by", None)
                evidence["events"] = {**evidence.get("events", {}), "weights": event.event_id}
                open_rows[name] = Segment(
                    current.variant_name,
                    current.config_name,
                    current.model_name,
                    current.package_arn,
                    weight,
                    event.time,
                    evidence=evidence,
                )
        elif event.name == DELETE_EVENT:
            _close(open_rows, event.time, out, event.event_id)
            last_deploy = None
    _reconcile_with_mirror(open_rows, out, last_deploy, chain, mirror)
    out.extend(open_rows.values())
    return sorted(out, key=lambda s: (s.started_at, s.variant_name))


def _reconcile_with_mirror(
    open_rows: dict[str, Segment],
    out: list[Segment],
    last_deploy: ChainEvent | None,
    chain: Chain,
    mirror: MirrorEndpoint | None,
) -> None:
    if mirror is None:
        return
    if mirror.deleted_at is not None:
        if open_rows:  # the endpoint is gone, CloudTrail has no DeleteEndpoint for it (yet)
            for segment in open_rows.values():
                segment.evidence["missing"] = [
                    *segment.evidence.get("missing", []),
                    f"DeleteEndpoint: {RETENTION_HINT}",
                ]
                segment.evidence["ended_by_mirror"] = {"deleted_observed_at": _iso(mirror.deleted_at)}
            _close(open_rows, mirror.deleted_at, out)
        return
    if not mirror.variants and not mirror.config_name:
        return
    mirror_started = mirror.last_modified_at or mirror.created_at or mirror.first_seen_at
    if last_deploy is None and not open_rows:
        # Only the mirror knows this deployment (created before retention, or no trail ingested yet).
        for variant in mirror.variants:
            evidence = {
                "source": "mirror",
                "mirror": _mirror_note(mirror),
                "missing": [f"CreateEndpoint/UpdateEndpoint to {mirror.config_name}: {RETENTION_HINT}"],
                "started_at_is": "the endpoint's LastModifiedTime (served since at least then)",
            }
            open_rows[variant.variant_name] = Segment(
                variant.variant_name,
                mirror.config_name,
                variant.model_name,
                variant.package_arn,
                variant.weight,
                mirror_started,
                evidence=evidence,
            )
        return
    current_config = next((s.config_name for s in open_rows.values()), "")
    if current_config.lower() == mirror.config_name.lower():
        by_variant = {v.variant_name: v for v in mirror.variants}
        for segment in open_rows.values():
            known = by_variant.get(segment.variant_name)
            if known is None:
                continue
            if not segment.package_arn and known.package_arn:
                segment.package_arn = known.package_arn
                segment.model_name = segment.model_name or known.model_name
                segment.evidence["mirror"] = {**_mirror_note(mirror), "filled": "package_arn"}
            elif segment.package_arn and known.package_arn and segment.package_arn.lower() != known.package_arn.lower():
                segment.evidence["mirror_disagrees"] = {"package_arn": known.package_arn, **_mirror_note(mirror)}
        return
    assert last_deploy is not None or open_rows
    deployed_at = last_deploy.time if last_deploy else None
    if deployed_at is not None and mirror_started > deployed_at:
        # The mirror shows a later config CloudTrail has not told us about (yet): trust the observation.
        for segment in open_rows.values():
            segment.evidence["ended_by_mirror"] = {"config_name": mirror.config_name, "at": _iso(mirror_started)}
        _close(open_rows, mirror_started, out)
        base = {"source": "mirror", "events": {}}
        for index, segment in enumerate(chain.segments(mirror.config_name, mirror_started, base)):
            segment.evidence["missing"] = [
                *segment.evidence.get("missing", []),
                f"UpdateEndpoint to {mirror.config_name}: {RETENTION_HINT}",
            ]
            segment.evidence["mirror"] = {**_mirror_note(mirror), **segment.evidence.get("mirror", {})}
            open_rows[segment.variant_name or f"#{index}"] = segment
        return
    for segment in open_rows.values():
        segment.evidence["mirror_disagrees"] = {
            **_mirror_note(mirror),
            "note": "the mirror still shows another config after this update: it may have failed or be in progress",
        }


# ---------------------------------------------------------------------------------------------- database part


@dataclass
class RebuildResult:
    endpoints: list[str] = field(default_factory=list)
    rows: int = 0


def _chain_event(row: CloudTrailEvent) -> ChainEvent:
    raw = row.raw if isinstance(row.raw, dict) else {}
    request = ct.ci_get(raw, "requestParameters")
    response = ct.ci_get(raw, "responseElements")
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
    from registry_app.models import EndpointVariant

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
        resource_type=ct.ENDPOINT,
        event_name__in=[*DEPLOY_EVENTS, WEIGHTS_EVENT, DELETE_EVENT],
    )
    if source is not None:
        events_qs = events_qs.filter(source=source)
    endpoint_events = [_chain_event(row) for row in _successful(events_qs)]
    config_names = {ct.ci_str(e.request, "endpointConfigName").lower() for e in endpoint_events} - {""}
    mirror = _mirror(source, endpoint_name)
    if mirror is not None and mirror.config_name:
        config_names.add(mirror.config_name.lower())
    config_qs = CloudTrailEvent.objects.filter(
        resource_type=ct.ENDPOINT_CONFIG,
        event_name="CreateEndpointConfig",
        resource_name__in=_name_variants(config_names),
    )
    if source is not None:
        config_qs = config_qs.filter(source=source)
    configs = _by_name(_successful(config_qs), config_names)
    model_names = {m.lower() for events in configs.values() for e in events for _, m, _ in config_variants(e)} - {""}
    model_qs = CloudTrailEvent.objects.filter(
        resource_type=ct.MODEL, event_name="CreateModel", resource_name__in=_name_variants(model_names)
    )
    if source is not None:
        model_qs = model_qs.filter(source=source)
    models = _by_name(_successful(model_qs), model_names)
    chain = Chain(configs, models, _mirror_models(source), mirror)
    segments = build_segments(endpoint_events, chain, mirror)
    name = mirror.name if mirror is not None else _spelling(endpoint_events, endpoint_name)
    arns = {s.package_arn.lower() for s in segments if s.package_arn}
    packages = {
        arn.lower(): pk
        for pk, arn in ModelPackage.objects.filter(arn__in=_arn_variants(segments)).values_list("pk", "arn")
        if arn.lower() in arns
    }
    rows = [
        EndpointDeployment(
            source=source,
            endpoint_name=name[:63],
            variant_name=s.variant_name[:63],
            config_name=s.config_name[:63],
            model_name=s.model_name[:63],
            package_arn=s.package_arn,
            package_id=packages.get(s.package_arn.lower()),
            weight=s.weight,
            started_at=s.started_at,
            ended_at=s.ended_at,
            evidence=s.evidence,
        )
        for s in segments
    ]
    with transaction.atomic():
        stale = EndpointDeployment.objects.filter(endpoint_name_is(endpoint_name))
        if source is not None:
            stale = stale.filter(source=source)
        stale.delete()
        EndpointDeployment.objects.bulk_create(rows)
    return len(rows)


def _arn_variants(segments: list[Segment]) -> list[str]:
    return sorted({v for s in segments if s.package_arn for v in (s.package_arn, s.package_arn.lower())})


def _spelling(events: list[ChainEvent], fallback: str) -> str:
    for event in sorted(events, key=lambda e: (e.time, e.pk), reverse=True):
        name = ct.ci_str(event.request, "endpointName")
        if name:
            return name
    return fallback


def _targets(endpoint_name: str | None, source: RegistrySource | None) -> dict[tuple[int | None, str], str]:
    """(source id, lower-cased endpoint name) → a spelling, from CloudTrail and the mirror."""
    targets: dict[tuple[int | None, str], str] = {}
    events = CloudTrailEvent.objects.filter(resource_type=ct.ENDPOINT).exclude(endpoint_name="")
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
