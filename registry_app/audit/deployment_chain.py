"""The pure part of the deployment history: from the CloudTrail chain of one endpoint (and what the
mirror knows now) to its deployment windows, each with its evidence. No queries (``deployments``
reads the events and writes the rows).

The chain: ``CreateModel`` (``primaryContainer.modelPackageName``) → ``CreateEndpointConfig``
(``productionVariants[].modelName``) → ``CreateEndpoint`` / ``UpdateEndpoint`` (``endpointName``,
``endpointConfigName``) → ``UpdateEndpointWeightsAndCapacities`` → ``DeleteEndpoint``. A link neither
CloudTrail nor the mirror can prove is listed under ``missing`` and left blank, never guessed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from registry_app.audit.event_keys import ci_get, ci_str
from registry_app.audit.event_links import model_package_names
from registry_app.mirror.package_refs import package_ref

__all__ = [
    "DELETE_EVENT",
    "DEPLOY_EVENTS",
    "RETENTION_HINT",
    "WEIGHTS_EVENT",
    "Chain",
    "ChainEvent",
    "MirrorEndpoint",
    "MirrorVariant",
    "Segment",
    "build_segments",
    "config_variants",
    "model_package_arn",
]

DEPLOY_EVENTS = ("CreateEndpoint", "UpdateEndpoint")
WEIGHTS_EVENT = "UpdateEndpointWeightsAndCapacities"
DELETE_EVENT = "DeleteEndpoint"
RETENTION_HINT = "not in the ingested CloudTrail (older than its retention, or not ingested yet)"


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
    for variant in ci_get(event.request, "productionVariants") or []:
        if isinstance(variant, dict):
            out.append(
                (
                    ci_str(variant, "variantName"),
                    ci_str(variant, "modelName"),
                    _float(ci_get(variant, "initialVariantWeight")),
                )
            )
    return out


def model_package_arn(event: ChainEvent) -> str:
    """The registry package a CreateModel event deployed: its ARN (built from ``group/version`` or a bare
    name with the event's region and account, as the endpoint sync builds it: ``mirror.package_refs``),
    else the reference as written."""
    for name in model_package_names(event.request):
        ref = package_ref(name, region=event.region, account=event.account)
        if ref.arn or ref.written:
            return ref.arn or ref.written
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
            config_name = ci_str(event.request, "endpointConfigName")
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
            for desired in ci_get(event.request, "desiredWeightsAndCapacities") or []:
                name = ci_str(desired, "variantName")
                weight = _float(ci_get(desired, "desiredWeight"))
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
