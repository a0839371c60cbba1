"""The lineage graph around each package: walked in AWS (bounded depth), stored both ways.

A package is tracked by SageMaker as an artifact whose source URI is the package ARN (``ListArtifacts``).
From it ``QueryLineage`` walks ``Ascendants`` (the model artifact, the training job's trial component,
the data sets and image it read, the processing jobs that prepared them) to ``MAX_DEPTH``; from each
model artifact feeding the package a second query walks two steps of ``Descendants`` (the evaluation
and bias jobs that read the model, and what they wrote). Where ``QueryLineage`` is refused (denied, or
a Region without it) the same walk is made with ``ListAssociations``, one call per vertex and direction.

``walk_package`` makes AWS calls only (it runs on the sync's thread pool); ``store_walks`` writes the
vertices, edges and each package's memberships (``PackageLineage``) in one transaction per batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from registry_app.aws import lineage as aws_lineage
from registry_app.aws.errors import AccessDeniedError, AwsError, ValidationError
from registry_app.aws.sagemaker import RegistryClient
from registry_app.mirror import provenance_mapping as pm
from registry_app.models import LineageEdge, LineageEntity, ModelPackage, PackageLineage, RegistrySource

MAX_DEPTH = 6  # package <- model <- training job <- data <- preparing job <- raw data, and one more
EVALUATION_DEPTH = 2  # model -> evaluation job -> what it wrote
MAX_MODELS = 3  # model artifacts of one package followed down (a package has one per container)
WALKED, NO_ARTIFACT, ERROR = "walked", "no_artifact", "error"


@dataclass
class Walk:
    """What one package's walk found (or why it found nothing)."""

    status: str
    root: dict[str, Any] | None = None  # the package's artifact summary (ListArtifacts)
    vertices: dict[str, dict[str, Any]] = field(default_factory=dict)  # ARN -> {Arn, Type, LineageType, Name?}
    edges: dict[tuple[str, str], str] = field(default_factory=dict)  # (source, destination) -> association type
    error: str = ""
    truncated: bool = False

    @property
    def root_arn(self) -> str:
        return str((self.root or {}).get("ArtifactArn") or "")

    def job_components(self, kind: str) -> list[tuple[str, str]]:
        """``(component ARN, job name)`` of the ``kind`` jobs in the graph."""
        found = []
        for arn in self.vertices:
            job = pm.component_job(arn)
            if job and job[0] == kind:
                found.append((arn, job[1]))
        return found


class LineageUnavailable(Exception):
    """Neither QueryLineage nor ListAssociations may be called: the run stops walking."""


class QueryRefused(Exception):
    """QueryLineage is denied (or not offered in the Region): walk with ListAssociations instead."""


def walk_package(client: RegistryClient, package_arn: str, *, use_query: bool = True) -> Walk:
    """Find the package's artifact and walk around it. AWS only; one package's failure becomes
    ``status=error``; a refused API raises ``QueryRefused`` (QueryLineage: walk again with
    ``use_query=False``) or ``LineageUnavailable`` (nothing left to walk with)."""
    try:
        artifacts = aws_lineage.artifacts_with_source(client, package_arn)
    except (AccessDeniedError, ValidationError) as exc:
        raise LineageUnavailable(str(exc)) from exc
    except AwsError as exc:
        return Walk(ERROR, error=str(exc))
    if not artifacts:
        return Walk(NO_ARTIFACT)
    walk = Walk(WALKED, root=artifacts[0])
    root = walk.root_arn
    walk.vertices[root] = {"Arn": root, "Type": artifacts[0].get("ArtifactType") or "", "LineageType": "Artifact"}
    try:
        _grow(client, walk, root, "Ascendants", MAX_DEPTH, use_query)
        models = sorted({s for (s, d) in walk.edges if d == root and walk.vertices.get(s, {}).get("Type") == "Model"})
        for model in models[:MAX_MODELS]:
            _grow(client, walk, model, "Descendants", EVALUATION_DEPTH, use_query)
    except (AccessDeniedError, ValidationError) as exc:
        if use_query:
            raise QueryRefused(str(exc)) from exc
        raise LineageUnavailable(str(exc)) from exc
    except AwsError as exc:
        walk.status, walk.error = ERROR, str(exc)
    return walk


def _grow(client: RegistryClient, walk: Walk, start: str, direction: str, depth: int, use_query: bool) -> None:
    if use_query:
        answer = aws_lineage.query_lineage(client, start, direction=direction, max_depth=depth)
        walk.truncated = walk.truncated or answer.truncated
        for vertex in answer.vertices:
            if vertex.get("Arn"):
                walk.vertices.setdefault(vertex["Arn"], dict(vertex))
        for edge in answer.edges:
            if edge.get("SourceArn") and edge.get("DestinationArn"):
                walk.edges[(edge["SourceArn"], edge["DestinationArn"])] = str(edge.get("AssociationType") or "")
        return
    frontier = [start]
    for _ in range(depth):
        following = []
        for arn in frontier:
            for summary in aws_lineage.associations(client, arn, as_source=direction == "Descendants"):
                far = "DestinationArn" if direction == "Descendants" else "SourceArn"
                side = "Destination" if direction == "Descendants" else "Source"
                other = summary.get(far)
                if not other:
                    continue
                walk.edges[(summary["SourceArn"], summary["DestinationArn"])] = str(
                    summary.get("AssociationType") or ""
                )
                if other not in walk.vertices:
                    walk.vertices[other] = {
                        "Arn": other,
                        "Type": summary.get(f"{side}Type") or "",
                        "LineageType": _lineage_type(other),
                        "Name": summary.get(f"{side}Name") or "",
                    }
                    following.append(other)
        frontier = following


def _lineage_type(arn: str) -> str:
    kind = arn.split(":", 5)[-1].split("/", 1)[0] if arn.count(":") >= 5 else ""
    return {
        "artifact": "Artifact",
        "action": "Action",
        "context": "Context",
        "experiment-trial-component": "TrialComponent",
    }.get(kind, "")


def artifact_details(record: dict[str, Any]) -> dict[str, Any]:
    """LineageEntity fields from a DescribeArtifact answer (or a ListArtifacts summary)."""
    source = record.get("Source") or {}
    return {
        "name": str(record.get("ArtifactName") or "")[:256],
        "entity_type": str(record.get("ArtifactType") or "")[:256],
        "source_uri": pm.bounded_uri(source.get("SourceUri")),
        "source_version": pm.source_version(source),
        "properties": record.get("Properties") or {},
    }


# --------------------------------------------------------------------------------------------- storing


def store_walks(
    source: RegistrySource,
    walks: dict[int, Walk],
    described: dict[str, dict[str, Any]],
    failed: dict[str, str],
) -> dict[str, LineageEntity]:
    """Upsert the walks' vertices and edges and replace each walked package's memberships.

    ``described``: DescribeArtifact answers by ARN; ``failed``: ARN -> error. Returns the stored
    entities by ARN (for the package links). One transaction.
    """
    vertices: dict[str, dict[str, Any]] = {}
    edges: dict[tuple[str, str], str] = {}
    for walk in walks.values():
        vertices.update({arn: v for arn, v in walk.vertices.items() if arn not in vertices})
        edges.update(walk.edges)
    now = timezone.now()
    with transaction.atomic():
        existing = {e.arn: e for e in LineageEntity.objects.filter(source=source, arn__in=list(vertices))}
        created = []
        for arn, vertex in vertices.items():
            fields = _entity_fields(arn, vertex, described.get(arn), failed.get(arn), now)
            entity = existing.get(arn)
            if entity is None:
                created.append(LineageEntity(source=source, arn=arn, **fields))
            elif _changed(entity, fields):
                for key, value in fields.items():
                    setattr(entity, key, value)
                entity.save()
        LineageEntity.objects.bulk_create(created, batch_size=500)
        stored = {e.arn: e for e in LineageEntity.objects.filter(source=source, arn__in=list(vertices))}
        LineageEdge.objects.bulk_create(
            [
                LineageEdge(source_entity=stored[s], destination_entity=stored[d], association_type=kind)
                for (s, d), kind in edges.items()
                if s in stored and d in stored
            ],
            ignore_conflicts=True,
            batch_size=500,
        )
        walked = {pk: walk for pk, walk in walks.items() if walk.status == WALKED and walk.root_arn}
        PackageLineage.objects.filter(package_id__in=list(walks)).delete()
        PackageLineage.objects.bulk_create(
            [
                PackageLineage(package_id=pk, entity=stored[arn], relation=relation, depth=min(depth, 32767))
                for pk, walk in walked.items()
                for arn, (relation, depth) in pm.relations(walk.root_arn, walk.edges, walk.vertices).items()
                if arn in stored
            ],
            batch_size=1000,
        )
    return stored


def _entity_fields(
    arn: str, vertex: dict[str, Any], record: dict[str, Any] | None, error: str | None, now: Any
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "lineage_type": str(vertex.get("LineageType") or _lineage_type(arn))[:16],
        "entity_type": str(vertex.get("Type") or "")[:256],
    }
    if vertex.get("Name"):
        fields["name"] = str(vertex["Name"])[:256]
    job = pm.component_job(arn)
    if job:
        fields["job_kind"], fields["job_name"] = job
    if record is not None:
        details = artifact_details(record)
        fields.update({k: v for k, v in details.items() if v or k == "properties"})
        fields["described_at"] = now
        fields["error"] = ""
    elif error:
        fields["error"] = error[:2000]
    return fields


def _changed(entity: LineageEntity, fields: dict[str, Any]) -> bool:
    return any(getattr(entity, key) != value for key, value in fields.items() if key != "described_at")


def undescribed_artifacts(source: RegistrySource, walks: dict[int, Walk], known: dict[str, Any]) -> list[str]:
    """Artifact vertices never described and not ``known`` (an artifact's source never changes:
    described once)."""
    arns = {
        arn
        for walk in walks.values()
        for arn, vertex in walk.vertices.items()
        if (vertex.get("LineageType") or _lineage_type(arn)) == "Artifact" and arn not in known
    }
    if not arns:
        return []
    known = set(
        LineageEntity.objects.filter(source=source, arn__in=list(arns), described_at__isnull=False).values_list(
            "arn", flat=True
        )
    )
    return sorted(arns - known)


def known_sources(walks: dict[int, Walk], records: dict[int, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Artifacts whose source the mirror knows without DescribeArtifact: each package's own (its
    ListArtifacts summary), and the one model artifact feeding a single-container package, which
    SageMaker tracks under the container's ModelDataUrl (Developer Guide, "Tracking Entities for
    Model Packages": an artifact for the model used in each container)."""
    known: dict[str, dict[str, Any]] = {}
    for pk, walk in walks.items():
        if not walk.root or not walk.root_arn:
            continue
        known[walk.root_arn] = walk.root
        containers = ((records.get(pk) or {}).get("InferenceSpecification") or {}).get("Containers") or []
        urls = [c.get("ModelDataUrl") for c in containers if isinstance(c, dict) and c.get("ModelDataUrl")]
        models = [s for (s, d) in walk.edges if d == walk.root_arn and walk.vertices.get(s, {}).get("Type") == "Model"]
        if len(urls) == 1 and len(containers) == 1 and len(models) == 1:
            known[models[0]] = {"Source": {"SourceUri": urls[0]}, "ArtifactType": "Model"}
    return known


def package_account(package: ModelPackage) -> str:
    parts = package.arn.split(":")
    return parts[4] if len(parts) > 4 else ""
