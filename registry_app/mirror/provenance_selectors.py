"""Reads behind the provenance pages: a package's training (with its differences from the approved
version's), its lineage graph, and the reverse question, which packages a data set, artifact or job
went into, with their status and the endpoints serving them now.

Fixed query counts: ``package_provenance`` makes at most eight queries, ``impact`` at most eleven,
whatever the number of jobs, channels, vertices or packages involved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch, Q

from registry_app.mirror import provenance_mapping as pm
from registry_app.models import (
    EndpointVariant,
    JobData,
    LineageEdge,
    LineageEntity,
    ModelPackage,
    PackageLineage,
    PackageTraining,
    ProcessingJob,
    TrainingJob,
)
from registry_app.permissions import is_active_user

__all__ = [
    "GRAPH_NODES",
    "IMPACT_ROWS",
    "GraphView",
    "ImpactAnswer",
    "ImpactRow",
    "ProvenanceView",
    "covering_prefixes",
    "impact",
    "package_provenance",
]

GRAPH_NODES = 40  # the drawn graph keeps the nearest this many vertices
IMPACT_ROWS = 5000  # a CSV export's ceiling; the page shows the first IMPACT_PAGE
IMPACT_PAGE = 500
_S3_BUCKET = re.compile(r"^s3://[^/]+")


@dataclass
class GraphView:
    """Vertices and edges of one package's graph, nearest first (``truncated`` when some were left out)."""

    root_id: int | None
    entities: list[LineageEntity]
    relations: dict[int, str]
    edges: list[tuple[int, int, str]]
    truncated: bool = False


@dataclass
class ProvenanceView:
    link: PackageTraining | None
    job: TrainingJob | None
    inputs: list[JobData] = field(default_factory=list)
    outputs: list[JobData] = field(default_factory=list)
    hyperparameters: list[tuple[str, str, str]] = field(default_factory=list)  # (name, value, change vs baseline)
    baseline: ModelPackage | None = None
    baseline_job: TrainingJob | None = None
    differences: list[pm.TrainingDiff] = field(default_factory=list)
    processing: list[tuple[ProcessingJob, str]] = field(default_factory=list)  # (job, role)
    graph: GraphView | None = None

    @property
    def checked(self) -> bool:
        return self.link is not None


def package_provenance(package: ModelPackage, baseline: ModelPackage | None = None) -> ProvenanceView:
    """The training of ``package`` and how it differs from ``baseline``'s (the approved version)."""
    links = {
        link.package_id: link
        for link in PackageTraining.objects.filter(
            package_id__in=[p.pk for p in (package, baseline) if p is not None]
        ).select_related("training_job")
    }
    link = links.get(package.pk)
    view = ProvenanceView(link=link, job=link.training_job if link else None, baseline=baseline)
    base_link = links.get(baseline.pk) if baseline is not None else None
    view.baseline_job = base_link.training_job if base_link is not None else None
    jobs = [j for j in (view.job, view.baseline_job) if j is not None]
    data = list(JobData.objects.filter(training_job__in=jobs).order_by("direction", "name", "pk")) if jobs else []
    for job in jobs:
        job.inputs = [d for d in data if d.training_job_id == job.pk]  # type: ignore[attr-defined]
    if view.job is not None:
        view.inputs = [d for d in view.job.inputs if d.direction == JobData.Direction.INPUT]  # type: ignore[attr-defined]
        view.outputs = [d for d in view.job.inputs if d.direction == JobData.Direction.OUTPUT]  # type: ignore[attr-defined]
    if view.job is not None and view.baseline_job is not None and baseline is not None and link and base_link:
        view.differences = pm.training_differences(
            pm.training_summary(view.job, data_version=link.training_data_version),
            pm.training_summary(view.baseline_job, data_version=base_link.training_data_version),
        )
    changed = {d.name: d.change for d in view.differences if d.kind == "hyperparameter"}
    if view.job is not None:
        view.hyperparameters = [
            (name, value, changed.get(name, "")) for name, value in sorted(view.job.hyperparameters.items())
        ]
    if link is not None and link.lineage_root_id:
        view.graph, view.processing = _graph(package)
    return view


def _graph(package: ModelPackage) -> tuple[GraphView, list[tuple[ProcessingJob, str]]]:
    members = list(
        PackageLineage.objects.filter(package=package)
        .select_related("entity__processing_job")
        .order_by("depth", "entity__lineage_type", "entity__arn")
    )
    kept = members[:GRAPH_NODES]
    ids = {m.entity_id for m in kept}
    edges = [
        (s, d, kind)
        for s, d, kind in LineageEdge.objects.filter(source_entity_id__in=ids, destination_entity_id__in=ids)
        .order_by("pk")
        .values_list("source_entity_id", "destination_entity_id", "association_type")
    ]
    root = next((m.entity_id for m in members if m.relation == PackageLineage.Relation.SELF), None)
    graph = GraphView(root, [m.entity for m in kept], {m.entity_id: m.relation for m in kept}, edges)
    graph.truncated = len(members) > len(kept)
    processing = [
        (m.entity.processing_job, "prepared the training data" if m.relation == "ancestor" else "read the model")
        for m in members
        if m.entity.processing_job is not None
    ]
    return graph, processing


# --------------------------------------------------------------------------------------------- impact


@dataclass
class ImpactRow:
    package: ModelPackage
    how: list[str] = field(default_factory=list)
    trained: bool = False  # it went into the training (else it only fed the evaluation)
    endpoints: list[EndpointVariant] = field(default_factory=list)


@dataclass
class ImpactAnswer:
    kind: str  # data, artifact, job
    value: str
    rows: list[ImpactRow] = field(default_factory=list)
    training_jobs: list[TrainingJob] = field(default_factory=list)
    processing_jobs: list[ProcessingJob] = field(default_factory=list)
    entities: list[LineageEntity] = field(default_factory=list)
    truncated: bool = False

    @property
    def serving(self) -> int:
        return sum(1 for row in self.rows if row.endpoints)


def covering_prefixes(uri: str) -> list[str]:
    """``uri`` and each of its leading paths, with and without the ``/``: the channel URIs that, as S3
    prefixes, cover the location asked about (``s3://b/train`` and ``s3://b/train/`` cover
    ``s3://b/train/part-1.csv``)."""
    head = _S3_BUCKET.match(uri)
    start = head.end() if head else 0
    found = {uri, uri.rstrip("/")}
    for index, char in enumerate(uri):
        if char == "/" and index >= start:
            found.update({uri[:index], uri[: index + 1]})
    return sorted(p for p in found if p and len(p) <= 1024)


def _uri_match(uri: str, field_name: str = "s3_uri") -> Q:
    """Locations inside ``uri`` (it is their prefix) or covering it (they are a prefix of it)."""
    return Q(**{f"{field_name}__startswith": uri}) | Q(**{f"{field_name}__in": covering_prefixes(uri)})


def impact(user: Any, *, kind: str, value: str) -> ImpactAnswer | None:
    """Every package a data location (``s3://`` prefix), lineage artifact or job went into."""
    if not is_active_user(user):
        return None
    answer = ImpactAnswer(kind, value)
    found: dict[int, tuple[list[str], bool]] = {}

    def add(package_id: int, how: str, trained: bool) -> None:
        reasons, was_trained = found.setdefault(package_id, ([], False))
        if how not in reasons:
            reasons.append(how)
        found[package_id] = (reasons, was_trained or trained)

    if kind == "data":
        entities = list(LineageEntity.objects.filter(_uri_match(value, "source_uri"))[:200])
        data = list(
            JobData.objects.filter(_uri_match(value), direction=JobData.Direction.INPUT).select_related(
                "training_job", "processing_job"
            )[:2000]
        )
        answer.training_jobs = _unique(d.training_job for d in data if d.training_job is not None)
        answer.processing_jobs = _unique(d.processing_job for d in data if d.processing_job is not None)
        reasons: dict[int, list[str]] = {}
        for d in data:
            if d.training_job is not None:
                reasons.setdefault(d.training_job_id, []).append(
                    f"trained on {d.s3_uri} (channel {d.name or '?'}) by job {d.training_job.name}"
                )
        _via_training(answer.training_jobs, add, reasons)
    elif kind == "artifact":
        entities = list(LineageEntity.objects.filter(arn=value))
    else:
        name = _job_name(value)
        answer.training_jobs = list(TrainingJob.objects.filter(name__iexact=name))
        answer.processing_jobs = list(ProcessingJob.objects.filter(name__iexact=name))
        _via_training(
            answer.training_jobs, add, {job.pk: [f"trained by job {job.name}"] for job in answer.training_jobs}
        )
        entities = list(LineageEntity.objects.filter(job_name__iexact=name))
    # A processing job reaches packages through its trial component in their lineage.
    component_ids = (
        list(LineageEntity.objects.filter(processing_job__in=answer.processing_jobs).values_list("pk", flat=True))
        if answer.processing_jobs
        else []
    )
    answer.entities = entities
    memberships = PackageLineage.objects.filter(Q(entity__in=entities) | Q(entity_id__in=component_ids)).select_related(
        "entity"
    )
    for m in memberships[:IMPACT_ROWS]:
        label = m.entity.source_uri or m.entity.job_name or m.entity.arn
        if m.relation in (PackageLineage.Relation.ANCESTOR, PackageLineage.Relation.SELF):
            add(m.package_id, f"lineage: {label} went into it", True)
        elif m.relation == PackageLineage.Relation.RELATED:
            add(m.package_id, f"lineage: {label} fed its evaluation", False)
    answer.truncated = len(found) > IMPACT_ROWS
    _fill_rows(answer, dict(list(found.items())[:IMPACT_ROWS]))
    return answer


def _via_training(jobs: list[TrainingJob], add: Any, reasons: dict[int, list[str]]) -> None:
    """The packages each job trained (one query), with the reasons given for that job."""
    if not jobs:
        return
    for package_id, job_id in PackageTraining.objects.filter(training_job__in=jobs).values_list(
        "package_id", "training_job_id"
    ):
        for how in reasons.get(job_id, []):
            add(package_id, how, True)


def _fill_rows(answer: ImpactAnswer, found: dict[int, tuple[list[str], bool]]) -> None:
    if not found:
        return
    serving = EndpointVariant.objects.filter(endpoint__deleted_at__isnull=True).select_related("endpoint")
    packages = (
        ModelPackage.objects.filter(pk__in=list(found))
        .select_related("group__source")
        .defer("raw", "inference_specification", "model_metrics", "embedded_card_content")
        .prefetch_related(Prefetch("deployments", queryset=serving.order_by("endpoint__name", "variant_name")))
        .order_by("group__name", "-version", "pk")
    )
    for package in packages:
        how, trained = found[package.pk]
        answer.rows.append(ImpactRow(package, how, trained, list(package.deployments.all())))


def _unique(items: Any) -> list[Any]:
    seen: dict[int, Any] = {}
    for item in items:
        seen.setdefault(item.pk, item)
    return list(seen.values())


def _job_name(value: str) -> str:
    for kind in ("training-job", "processing-job"):
        parsed = pm.job_from_arn(value, kind)
        if parsed:
            return parsed[1]
    return value
