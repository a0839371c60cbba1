"""Reads of a source's training and processing jobs and of its ML Lineage Tracking graph.

Every function takes the source's ``RegistryClient``, so calls are counted in its ``CallStats`` (the
sync run's ``aws_calls``) and failures arrive as ``registry_app.aws.errors`` exceptions: a missing job
is a ``NotFoundError`` (AWS answers DescribeTrainingJob's with ``ValidationException: Requested
resource not found``, see ``errors.VALIDATION_NOT_FOUND``). Answers are JSON-safe dictionaries.

Request limits are the API's (botocore's sagemaker service model): QueryLineage takes one start ARN
(``StartArns`` max 1), at most depth 10 and 50 vertices a page; ListArtifacts and ListAssociations
take at most 100 a page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from registry_app.aws.sagemaker import RegistryClient, jsonable

QUERY_PAGE = 50  # QueryLineage MaxResults maximum
LIST_PAGE = 100  # ListArtifacts / ListAssociations MaxResults maximum
MAX_DEPTH = 10  # QueryLineage MaxDepth maximum
# A lineage answer larger than this many pages is cut (and says so): a package's provenance never
# needs thousands of vertices, and a shared image or data set can reach that many going down.
MAX_QUERY_PAGES = 10

__all__ = [
    "LineageAnswer",
    "artifacts_with_source",
    "associations",
    "describe_artifact",
    "describe_processing_job",
    "describe_training_job",
    "query_lineage",
]


@dataclass
class LineageAnswer:
    """Vertices ``{Arn, Type, LineageType}`` and edges ``{SourceArn, DestinationArn, AssociationType}``."""

    vertices: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False


def describe_training_job(client: RegistryClient, name: str) -> dict[str, Any]:
    return jsonable(client._call("sagemaker", "DescribeTrainingJob", TrainingJobName=name))


def describe_processing_job(client: RegistryClient, name: str) -> dict[str, Any]:
    return jsonable(client._call("sagemaker", "DescribeProcessingJob", ProcessingJobName=name))


def describe_artifact(client: RegistryClient, arn: str) -> dict[str, Any]:
    return jsonable(client._call("sagemaker", "DescribeArtifact", ArtifactArn=arn))


def artifacts_with_source(client: RegistryClient, source_uri: str) -> list[dict[str, Any]]:
    """The artifacts whose ``Source.SourceUri`` is ``source_uri`` (e.g. a model package's ARN, which
    SageMaker tracks as an artifact); usually one, the oldest first."""
    pages = client._pages(
        "sagemaker",
        "ListArtifacts",
        "ArtifactSummaries",
        SourceUri=source_uri,
        SortBy="CreationTime",
        SortOrder="Ascending",
        MaxResults=LIST_PAGE,
    )
    return [summary for page in pages for summary in page]


def associations(client: RegistryClient, arn: str, *, as_source: bool) -> list[dict[str, Any]]:
    """The associations leaving (``as_source``) or reaching ``arn``, with both ends' types and names."""
    key = "SourceArn" if as_source else "DestinationArn"
    pages = client._pages("sagemaker", "ListAssociations", "AssociationSummaries", **{key: arn}, MaxResults=LIST_PAGE)
    return [summary for page in pages for summary in page]


def query_lineage(client: RegistryClient, start_arn: str, *, direction: str, max_depth: int) -> LineageAnswer:
    """The lineage graph around ``start_arn`` (``Ascendants``, ``Descendants`` or ``Both``), with edges."""
    answer = LineageAnswer()
    params: dict[str, Any] = {
        "StartArns": [start_arn],
        "Direction": direction,
        "IncludeEdges": True,
        "MaxDepth": max(1, min(MAX_DEPTH, max_depth)),
        "MaxResults": QUERY_PAGE,
    }
    token = ""
    for _ in range(MAX_QUERY_PAGES):
        response = client._call("sagemaker", "QueryLineage", **params, **({"NextToken": token} if token else {}))
        answer.vertices.extend(jsonable(response.get("Vertices") or []))
        answer.edges.extend(jsonable(response.get("Edges") or []))
        token = response.get("NextToken") or ""
        if not token:
            return answer
    answer.truncated = True
    return answer
