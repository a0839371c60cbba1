"""The as-of answer: what served an endpoint at a time, with each fact's evidence or what is missing.

Deployment windows (``EndpointDeployment``, rebuilt by ``deployments``) say which package versions
served; ``as_of_package`` says what each of them was at that time; ``as_of_status`` finds the
rollback candidate. Flat rows (``AsOfAnswer.fact_rows``) feed the CSV and print exports.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from registry_app.audit.as_of_evidence import Evidence, deployment_evidence, deployment_missing
from registry_app.audit.as_of_package import PackageAt, package_at
from registry_app.audit.as_of_status import RollbackCandidate, rollback_candidate
from registry_app.audit.coverage import SourceCoverage, coverage_for
from registry_app.audit.endpoints import pick_endpoint
from registry_app.audit.validation import event_validation
from registry_app.audit.values import iso, username
from registry_app.models import CloudTrailEvent, Endpoint, EndpointDeployment, ModelPackage, RegistrySource
from registry_app.models.audit import endpoint_name_is

__all__ = ["AsOfAnswer", "VariantAt", "as_of"]


@dataclass
class VariantAt:
    deployment: EndpointDeployment
    package: PackageAt
    rollback: RollbackCandidate | None
    evidence: list[Evidence] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.evidence = self.evidence or deployment_evidence(self.deployment)

    def as_dict(self) -> dict[str, Any]:
        d = self.deployment
        return {
            "variant_name": d.variant_name,
            "weight": d.weight,
            "config_name": d.config_name,
            "model_name": d.model_name,
            "window": {"started_at": iso(d.started_at), "ended_at": iso(d.ended_at)},
            "deployment_evidence": [e.as_dict() for e in self.evidence],
            "deployment_missing": deployment_missing(d),
            "package": self.package.as_dict(),
            "rollback_candidate": self.rollback.as_dict() if self.rollback else None,
        }


@dataclass
class AsOfAnswer:
    endpoint_name: str
    at: dt.datetime
    endpoint: Endpoint | None
    variants: list[VariantAt]
    nothing_deployed: bool
    summary: str
    summary_evidence: list[Evidence]
    missing: list[str]
    # Set when ``at`` falls before the CloudTrail evidence the sources cover: no answer is given.
    before_coverage: bool = False
    coverage: list[SourceCoverage] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint_name,
            "at": iso(self.at),
            "before_covered_range": self.before_coverage,
            "covered_from": {c.source.name: iso(c.covered_from) for c in self.coverage},
            "nothing_deployed": self.nothing_deployed,
            "summary": self.summary,
            "summary_evidence": [e.as_dict() for e in self.summary_evidence],
            "missing": self.missing,
            "variants": [v.as_dict() for v in self.variants],
        }

    def fact_rows(self) -> Iterator[dict[str, Any]]:
        """Flat rows (one per fact) for CSV and print exports."""
        base = {"endpoint": self.endpoint_name, "at": iso(self.at)}
        yield {
            **base,
            "variant": "",
            "package_arn": "",
            "fact": "answer",
            "value": self.summary,
            "evidence_ids": " ".join(e.ref for e in self.summary_evidence),
            "missing": "; ".join(self.missing),
        }
        for variant in self.variants:
            row = {**base, "variant": variant.deployment.variant_name, "package_arn": variant.package.package_arn}
            yield {
                **row,
                "fact": "deployment window",
                "value": f"{iso(variant.deployment.started_at)} – {iso(variant.deployment.ended_at) or 'now'}"
                f" weight {variant.deployment.weight}",
                "evidence_ids": " ".join(e.ref for e in variant.evidence),
                "missing": "",
            }
            for fact in variant.package.facts:
                yield {
                    **row,
                    "fact": fact.name,
                    "value": fact.value,
                    "evidence_ids": " ".join(e.ref for e in fact.evidence),
                    "missing": fact.missing,
                }
            for item in variant.package.signoffs:
                s = item.signoff
                yield {
                    **row,
                    "fact": "sign-off",
                    "value": f"{username(s.user)} as {s.role}: {s.decision}{' (stale)' if item.stale else ''}"
                    f" at {iso(s.created_at)}; fingerprint {s.fingerprint}",
                    "evidence_ids": f"signoff:{s.pk}",
                    "missing": "",
                }
            for decision in variant.package.decisions:
                yield {
                    **row,
                    "fact": "decision",
                    "value": f"{decision.get_kind_display()}: {decision.status} by "
                    f"{username(decision.decided_by) or 'policy'} at {iso(decision.created_at)}",
                    "evidence_ids": f"decision:{decision.pk}",
                    "missing": "",
                }
            if variant.rollback is not None:
                rb = variant.rollback
                yield {
                    **row,
                    "fact": "rollback candidate",
                    "value": f"{rb.package.arn} (v{rb.package.version})" if rb.package else "none",
                    "evidence_ids": " ".join(e.ref for e in rb.status_fact.evidence) if rb.status_fact else "",
                    "missing": rb.note if rb.package is None else "",
                }


def _lookup_packages(deployments: list[EndpointDeployment]) -> dict[str, ModelPackage]:
    arns = {d.package_arn for d in deployments if d.package_id is None and d.package_arn}
    if not arns:
        return {}
    return {p.arn: p for p in ModelPackage.objects.filter(arn__in=arns).select_related("group", "model_card")}


def _no_window_answer(
    name: str, endpoint: Endpoint | None, at: dt.datetime
) -> tuple[bool, str, list[Evidence], list[str]]:
    """Why nothing is known to serve at ``at``: really nothing (before the endpoint existed, or after it
    stopped), or a gap in the evidence."""
    first = EndpointDeployment.objects.filter(endpoint_name_is(name)).order_by("started_at", "pk").first()
    created = (
        CloudTrailEvent.objects.filter(endpoint_name_is(name), event_name="CreateEndpoint", error_code="")
        .order_by("event_time", "pk")
        .first()
    )
    if created is not None and at < created.event_time:
        return (
            True,
            f"Nothing was deployed: {name} was created at {iso(created.event_time)}.",
            [Evidence(f"cloudtrail:{created.event_id}", created.event_time, "CreateEndpoint")],
            [],
        )
    if endpoint is not None and endpoint.created_at is not None and at < endpoint.created_at:
        return (
            True,
            f"Nothing was deployed: {name} was created at {iso(endpoint.created_at)}.",
            [Evidence(f"endpoint:{endpoint.arn}", endpoint.created_at, "CreationTime (DescribeEndpoint)")],
            [],
        )
    if first is None:
        return (
            False,
            f"No deployment of {name} is known.",
            [],
            [
                f"No deployment history is recorded for {name}: its CloudTrail history has not been ingested "
                "(or it never existed)."
            ],
        )
    if at < first.started_at:
        earliest = min(filter(None, [first.started_at, created.event_time if created else None]))
        return (
            False,
            f"No deployment known before {iso(earliest)}.",
            deployment_evidence(first),
            [f"No deployment known before {iso(earliest)}: the endpoint's CloudTrail history starts then."],
        )
    previous = (
        EndpointDeployment.objects.filter(endpoint_name_is(name), ended_at__isnull=False, ended_at__lte=at)
        .order_by("-ended_at", "-pk")
        .first()
    )
    deleted = (
        CloudTrailEvent.objects.filter(
            endpoint_name_is(name), event_name="DeleteEndpoint", error_code="", event_time__lte=at
        )
        .order_by("-event_time", "-pk")
        .first()
    )
    evidence = deployment_evidence(previous) if previous else []
    if deleted is not None:
        evidence.append(Evidence(f"cloudtrail:{deleted.event_id}", deleted.event_time, "DeleteEndpoint"))
        return True, f"Nothing was deployed: {name} was deleted at {iso(deleted.event_time)}.", evidence, []
    ended = f" (the last known deployment ended at {iso(previous.ended_at)})" if previous else ""
    return (
        False,
        f"No deployment window covers this time{ended}.",
        evidence,
        ["The deployment history has a gap here: no CloudTrail evidence says what (if anything) served then."],
    )


def _coverage(endpoint_name: str, endpoint: Endpoint | None) -> list[SourceCoverage]:
    """The sources whose CloudTrail evidence an answer about this endpoint rests on."""
    if endpoint is not None and endpoint.source_id:
        sources = RegistrySource.objects.filter(pk=endpoint.source_id)
    else:
        ids = EndpointDeployment.objects.filter(endpoint_name_is(endpoint_name)).values_list("source_id", flat=True)
        sources = (
            RegistrySource.objects.filter(pk__in=ids) if ids.exists() else RegistrySource.objects.filter(enabled=True)
        )
    return coverage_for(sources.order_by("name"))


def _before_coverage(endpoint_name: str, endpoint: Endpoint | None, at: dt.datetime) -> AsOfAnswer | None:
    """The plain answer when ``at`` is before what the evidence covers (None: it is covered, or
    nothing has been ingested at all, in which case the answer says what is missing as before)."""
    coverage = _coverage(endpoint_name, endpoint)
    late = [c for c in coverage if c.covered_from is not None and at < c.covered_from]
    if not late:
        return None
    first = max(c.covered_from for c in late if c.covered_from is not None)
    summary = (
        f"{iso(at)} is before the CloudTrail evidence covers: it is complete only from {iso(first)}, so no "
        "answer is given from partial evidence."
    )
    missing = [c.describe() for c in late]
    return AsOfAnswer(endpoint_name, at, endpoint, [], False, summary, [], missing, True, coverage)


def with_validation(answer: AsOfAnswer) -> AsOfAnswer:
    """Each CloudTrail reference of the answer gets its call's validation state (one query)."""
    lists = [answer.summary_evidence]
    for variant in answer.variants:
        lists.append(variant.evidence)
        lists.extend(fact.evidence for fact in variant.package.facts)
        if variant.rollback is not None and variant.rollback.status_fact is not None:
            lists.append(variant.rollback.status_fact.evidence)
    ids = {e.ref.split(":", 1)[1] for evidence in lists for e in evidence if e.ref.startswith("cloudtrail:")}
    if not ids:
        return answer
    events = CloudTrailEvent.objects.filter(event_id__in=ids).select_related("trail_file")
    found = {event.event_id: event_validation(event) for event in events}
    for evidence in lists:
        for index, item in enumerate(evidence):
            validation = found.get(item.ref.split(":", 1)[1]) if item.ref.startswith("cloudtrail:") else None
            if validation is not None:
                evidence[index] = dataclasses.replace(item, validation=validation.text, validation_tone=validation.tone)
    return answer


def as_of(endpoint_name: str, at: dt.datetime) -> AsOfAnswer:
    """What served ``endpoint_name`` at ``at``, with each fact's evidence, or what is missing."""
    endpoint = pick_endpoint(endpoint_name)
    refused = _before_coverage(endpoint_name, endpoint, at)
    if refused is not None:
        return refused
    windows = list(
        EndpointDeployment.objects.filter(endpoint_name_is(endpoint_name), started_at__lte=at)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=at))
        .select_related("package__group", "package__model_card")
        .order_by("variant_name", "-started_at", "-pk")
    )
    if not windows:
        nothing, summary, evidence, missing = _no_window_answer(endpoint_name, endpoint, at)
        return with_validation(AsOfAnswer(endpoint_name, at, endpoint, [], nothing, summary, evidence, missing))
    by_arn = _lookup_packages(windows)
    variants: list[VariantAt] = []
    missing: list[str] = []
    seen_variants: set[str] = set()
    for window in windows:
        if window.variant_name in seen_variants:
            missing.append(
                f"Overlapping deployment windows for variant {window.variant_name}; the newest is shown first."
            )
        seen_variants.add(window.variant_name)
        package = window.package or by_arn.get(window.package_arn)
        facts_at = package_at(package, window.package_arn, at)
        rollback = rollback_candidate(package, at) if package is not None else None
        variants.append(VariantAt(window, facts_at, rollback))
        missing.extend(f"{window.variant_name}: deployment: {line}" for line in deployment_missing(window))
        missing.extend(f"{window.variant_name}: {fact.name}: {fact.missing}" for fact in facts_at.facts if fact.missing)
    names = ", ".join(
        f"{v.deployment.variant_name} → {v.package.package_arn or v.deployment.model_name}"
        + (f" (weight {v.deployment.weight:g})" if v.deployment.weight is not None else "")
        for v in variants
    )
    summary = f"{endpoint_name} served {names}."
    evidence = [e for v in variants for e in v.evidence]
    return with_validation(AsOfAnswer(endpoint_name, at, endpoint, variants, False, summary, evidence, missing))
