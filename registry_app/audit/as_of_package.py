"""One package version as it was at a time, for the as-of answer: its approval status and approval,
training data version, commit, image digest, model card status, sign-offs, decisions and outside
decisions, each fact with its evidence (or what is missing instead of a guess).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from registry_app.audit.as_of_evidence import Evidence, Fact
from registry_app.audit.as_of_revalidation import revalidation_fact
from registry_app.audit.as_of_status import (
    approval_fact,
    event_name_in,
    observations_with,
    status_events,
    status_fact,
    status_transitions,
)
from registry_app.audit.bypasses import outside_decision_row
from registry_app.audit.timeline_items import policy_version_fields, signoff_raw
from registry_app.audit.values import iso, username
from registry_app.models import (
    CloudTrailEvent,
    Decision,
    ModelCard,
    ModelPackage,
    OutsideDecision,
    PackageObservation,
    PushOutbox,
    SignOff,
)

__all__ = ["PackageAt", "SignOffAt", "package_at"]


@dataclass
class SignOffAt:
    signoff: SignOff
    stale: bool

    def as_dict(self) -> dict[str, Any]:
        return {**signoff_raw(self.signoff), "stale_at_time": self.stale, "evidence": f"signoff:{self.signoff.pk}"}


@dataclass
class PackageAt:
    package: ModelPackage | None
    package_arn: str
    facts: list[Fact]
    signoffs: list[SignOffAt]
    decisions: list[Decision]
    outside: list[OutsideDecision]

    @property
    def approvers(self) -> list[SignOffAt]:
        return [s for s in self.signoffs if not s.stale and s.signoff.decision == SignOff.Decision.APPROVE]

    def as_dict(self) -> dict[str, Any]:
        return {
            "package_arn": self.package_arn,
            "group": self.package.group.name if self.package else None,
            "version": self.package.version if self.package else None,
            "facts": [f.as_dict() for f in self.facts],
            "signoffs": [s.as_dict() for s in self.signoffs],
            "decisions": [
                {
                    "id": d.pk,
                    "kind": d.kind,
                    "status": d.status,
                    "decided_by": username(d.decided_by),
                    "created_at": iso(d.created_at),
                    "description": d.description,
                    "evidence": f"decision:{d.pk}",
                    **policy_version_fields(d),
                }
                for d in self.decisions
            ],
            "outside_decisions": [outside_decision_row(o) for o in self.outside],
        }


def _value_at(
    package: ModelPackage, field_name: str, observations: list[PackageObservation], at: dt.datetime
) -> tuple[Any, list[Evidence], str]:
    """(value of the mirror field at ``at``, evidence, what is missing). The value is the ``before`` of
    the first recorded change after ``at``; with no later change, the current value."""
    later = [o for o in observations if o.observed_at > at]
    if later:
        first = later[0]
        pair = (first.changes or {}).get(field_name)
        value = pair[0] if isinstance(pair, list | tuple) and len(pair) == 2 else None
        return value, [Evidence(f"observation:{first.pk}", first.observed_at, f"{field_name} before this change")], ""
    value = getattr(package, field_name)
    note = f"current mirror record; no change of {field_name} observed since"
    if package.first_seen_at > at:
        note = f"earliest mirror record (first seen {iso(package.first_seen_at)}); see the coverage fact"
    return value, [Evidence(f"package:{package.arn}", package.last_synced_at, note)], ""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else json.dumps(value, sort_keys=True))


def _reproducibility_facts(
    package: ModelPackage, observations: dict[str, list[PackageObservation]], at: dt.datetime
) -> list[Fact]:
    customer, c_ev, c_missing = _value_at(package, "customer_metadata", observations.get("customer_metadata", []), at)
    customer = customer if isinstance(customer, dict) else {}
    meta, m_ev, m_missing = _value_at(package, "metadata_properties", observations.get("metadata_properties", []), at)
    meta = meta if isinstance(meta, dict) else {}
    spec, s_ev, s_missing = _value_at(
        package, "inference_specification", observations.get("inference_specification", []), at
    )
    spec = spec if isinstance(spec, dict) else {}

    facts = []
    data_version = _text(customer.get("TrainingDataS3VersionId"))
    facts.append(
        Fact(
            "training data version",
            data_version or "(not recorded)",
            c_ev,
            c_missing
            or ("" if data_version else "TrainingDataS3VersionId is not in the package's CustomerMetadataProperties."),
        )
    )
    commit, commit_evidence, commit_missing = _text(customer.get("GitCommitSha")), c_ev, c_missing
    source_note = "CustomerMetadataProperties.GitCommitSha"
    if not commit:
        commit, commit_evidence, commit_missing = _text(meta.get("CommitId")), m_ev, m_missing
        source_note = "MetadataProperties.CommitId"
    facts.append(
        Fact(
            "commit",
            f"{commit} ({source_note})" if commit else "(not recorded)",
            commit_evidence,
            commit_missing or ("" if commit else "Neither GitCommitSha nor MetadataProperties.CommitId is recorded."),
        )
    )
    containers = [c for c in spec.get("Containers") or [] if isinstance(c, dict)]
    digests = [_text(c.get("ImageDigest")) for c in containers if c.get("ImageDigest")]
    evidence, missing = s_ev, s_missing
    if not digests and customer.get("ContainerImageDigest"):
        digests, evidence, missing = [_text(customer["ContainerImageDigest"])], c_ev, c_missing
    images_without = [str(c.get("Image") or "?") for c in containers if not c.get("ImageDigest")]
    if images_without and digests:
        missing = (missing + " " if missing else "") + f"No digest recorded for: {', '.join(images_without)}."
    facts.append(
        Fact(
            "image digest",
            ", ".join(digests) or "(not recorded)",
            evidence,
            missing
            or ("" if digests else "No ImageDigest in the inference specification and no ContainerImageDigest."),
        )
    )
    return facts


def _card_fact(package: ModelPackage, observations: dict[str, list[PackageObservation]], at: dt.datetime) -> Fact:
    card: ModelCard | None = package.model_card
    if card is not None:
        events = [
            e
            for e in CloudTrailEvent.objects.filter(
                Q(resource_name=card.name) | Q(resource_name=card.arn),
                event_name_in(("CreateModelCard", "UpdateModelCard")),
                error_code="",
                event_time__lte=at,
            ).order_by("-event_time", "-pk")[:50]
            if _card_status(e.raw)
        ]
        if events:
            event = events[0]
            return Fact(
                "model card status",
                f"{_card_status(event.raw)} (standalone card {card.name})",
                [Evidence(f"cloudtrail:{event.event_id}", event.event_time, event.event_name)],
            )
        if card.last_modified_at is not None and card.last_modified_at <= at:
            return Fact(
                "model card status",
                f"{card.status} (standalone card {card.name} v{card.version})",
                [Evidence(f"card:{card.arn}", card.last_modified_at, "not modified since")],
            )
        return Fact(
            "model card status",
            "unknown",
            [Evidence(f"card:{card.arn}", card.last_modified_at, f"now v{card.version} {card.status}")],
            missing=f"The standalone card {card.name} changed after this time (last modified "
            f"{iso(card.last_modified_at) or 'at an unknown time'}) and no CloudTrail record of its status "
            "before then has been ingested.",
        )
    value, evidence, missing = _value_at(
        package, "embedded_card_status", observations.get("embedded_card_status", []), at
    )
    if not value:
        return Fact("model card status", "(no model card)", evidence, missing)
    return Fact("model card status", f"{value} (card embedded in the package)", evidence, missing)


def _card_status(raw: Any) -> str:
    params = raw.get("requestParameters") if isinstance(raw, dict) else None
    if not isinstance(params, dict):
        return ""
    return str(params.get("modelCardStatus") or params.get("ModelCardStatus") or "")


_CONTENT_PARAMS = (
    "customermetadataproperties",
    "customermetadatapropertiestoremove",
    "inferencespecification",
    "additionalinferencespecificationstoadd",
    "modelcard",
    "sourceuri",
)


def _coverage_fact(package: ModelPackage, at: dt.datetime) -> Fact | None:
    """When the mirror first saw the package after ``at``: is there evidence its content stayed the same
    from ``at`` until then? CloudTrail says so only if it reaches back to ``at``. None when not needed."""
    first_seen = package.first_seen_at
    if first_seen <= at:
        return None
    changes = [
        event
        for event in CloudTrailEvent.objects.filter(
            Q(package=package) | Q(resource_name=package.arn),
            event_name_in(("UpdateModelPackage",)),
            error_code="",
            event_time__gt=at,
            event_time__lt=first_seen,
        ).order_by("event_time", "pk")[:50]
        if {str(k).lower() for k in ((event.raw or {}).get("requestParameters") or {})} & set(_CONTENT_PARAMS)
    ]
    name = "content before the mirror's first sighting"
    if changes:
        return Fact(
            name,
            f"changed after this time, before the mirror first saw it ({iso(first_seen)})",
            [
                Evidence(f"cloudtrail:{e.event_id}", e.event_time, "UpdateModelPackage changing content")
                for e in changes
            ],
            missing="Training data version, commit, image digest and card may have differed at this time: "
            "the mirror only knows the content after these calls.",
        )
    reaches_back = CloudTrailEvent.objects.filter(event_time__lte=at).exists()
    if reaches_back:
        return Fact(
            name,
            f"unchanged from this time until the mirror first saw it ({iso(first_seen)})",
            [Evidence("cloudtrail:coverage", at, "no UpdateModelPackage call changed its content in between")],
        )
    return Fact(
        name,
        "unknown",
        [],
        missing=f"The registry mirror first saw this package at {iso(first_seen)} and the ingested CloudTrail does "
        "not reach back to this time; training data version, commit, image digest and card are the earliest recorded.",
    )


def package_at(package: ModelPackage | None, arn: str, at: dt.datetime) -> PackageAt:
    if package is None:
        return PackageAt(
            None,
            arn,
            [Fact("package", arn or "(unknown)", [], missing="This package version is not in the registry mirror.")],
            [],
            [],
            [],
        )
    tracked = ("customer_metadata", "metadata_properties", "inference_specification", "embedded_card_status")
    observations = {name: observations_with([package.pk], name).get(package.pk, []) for name in tracked}
    transitions = status_transitions(
        observations_with([package.pk], "approval_status").get(package.pk, []),
        status_events([package]).get(package.pk, []),
    )
    status, _ = status_fact(package, transitions, at)
    signoffs = [
        SignOffAt(s, s.stale_at is not None and s.stale_at <= at)
        for s in SignOff.objects.filter(package=package, created_at__lte=at)
        .select_related("user", "policy_version")
        .order_by("created_at", "pk")
    ]
    decisions = list(
        Decision.objects.filter(package=package, created_at__lte=at)
        .select_related("decided_by", "policy_version")
        .order_by("created_at", "pk")
    )
    pushes = list(PushOutbox.objects.filter(package=package, created_at__lte=at).order_by("created_at"))
    outside = list(
        OutsideDecision.objects.filter(package=package, observed_at__lte=at)
        .select_related("event")
        .order_by("observed_at")
    )
    facts = [
        Fact(
            "package",
            f"{package.group.name} v{package.version}",
            [Evidence(f"package:{package.arn}", package.created_at, "registered (CreationTime)")],
        ),
        status,
        approval_fact(transitions, at, decisions, pushes, outside, package),
        *_reproducibility_facts(package, observations, at),
        _card_fact(package, observations, at),
        revalidation_fact(package, at),  # issue 15
    ]
    coverage = _coverage_fact(package, at)
    if coverage is not None:
        facts.append(coverage)
    return PackageAt(package, package.arn, facts, signoffs, decisions, outside)
