"""ML Lineage Tracking, which moto 5.2.5 does not implement at all (``list_artifacts`` raises
``NotImplementedError``): artifacts, contexts, actions, associations and ``QueryLineage``.

Shapes and limits are botocore's (``CreateArtifact``, ``DescribeArtifact``, ``ListArtifacts``,
``CreateContext``, ``CreateAction``, ``AddAssociation``, ``ListAssociations``, ``QueryLineage``);
the behaviour follows the Developer Guide's "Querying Lineage Entities" page: ``Ascendants`` walks
associations backwards, ``Descendants`` forwards, ``Both`` in either direction from every vertex
visited, and ``MaxDepth`` counts associations from the start. docs/aws-fake.md lists the assumptions.

Trial components are the jobs' own: SageMaker creates ``<job>-aws-training-job`` (and
``-aws-processing-job``) for every job, so such a component exists here exactly when moto has the job;
components made with moto's ``CreateTrialComponent`` exist too. The store lives on moto's SageMaker
backend (``aws_fake_lineage``), so ``mock_aws()`` resets clear it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from moto.core.responses import ActionResult
from moto.sagemaker.exceptions import AWSValidationException, ResourceNotFound
from moto.sagemaker.models import SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse

from registry_app.devtools.aws_fake._patching import set_attr
from registry_app.devtools.aws_fake.identity import now_ms
from registry_app.devtools.aws_fake.jobs import deleted_training_jobs

STORE_ATTR = "aws_fake_lineage"
ASSOCIATION_TYPES = ("ContributedTo", "AssociatedWith", "DerivedFrom", "Produced", "SameAs")
DIRECTIONS = ("Both", "Ascendants", "Descendants")
DEFAULT_MAX_RESULTS = 10  # the List* default the SageMaker references document ("The default value is 10")
MAX_LIST_RESULTS = 100
MAX_QUERY_RESULTS = 50
MAX_DEPTH = 10
# Auto-created trial component name suffix -> (job dictionary on moto's backend, vertex Type).
JOB_COMPONENTS = {
    "-aws-training-job": ("training_jobs", "TrainingJob"),
    "-aws-processing-job": ("processing_jobs", "ProcessingJob"),
    "-aws-transform-job": ("transform_jobs", "TransformJob"),
}
_LOCK = threading.RLock()


@dataclass
class Store:
    entities: dict[str, dict[str, Any]] = field(default_factory=dict)  # ARN -> Describe record (+ "_kind")
    associations: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # Indexes, so a registry of 10,000 packages (benchmarks/provenance_bench.py) answers in constant time.
    by_uri: dict[str, list[str]] = field(default_factory=dict)  # artifact Source.SourceUri -> ARNs
    out_edges: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    in_edges: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


def store_of(backend: SageMakerModelBackend) -> Store:
    with _LOCK:
        store = backend.__dict__.get(STORE_ATTR)
        if store is None:
            store = Store()
            setattr(backend, STORE_ATTR, store)
        return store


def _arn(response: SageMakerResponse, kind: str, name: str) -> str:
    backend = response.sagemaker_backend
    return f"arn:aws:sagemaker:{backend.region_name}:{backend.account_id}:{kind}/{name}"


def _invalid(message: str) -> AWSValidationException:
    return AWSValidationException(message)


def _limit(value: Any, maximum: int, member: str) -> int:
    if value is None:
        return min(DEFAULT_MAX_RESULTS, maximum)
    number = int(value)
    if not 1 <= number <= maximum:
        raise _invalid(
            f"1 validation error detected: Value '{number}' at '{member}' failed to satisfy constraint: "
            f"Member must have value between 1 and {maximum}"
        )
    return number


# --------------------------------------------------------------------------------------------- vertices


def vertex(backend: SageMakerModelBackend, arn: str) -> dict[str, str] | None:
    """``{Arn, Type, LineageType}`` of an existing entity, else None."""
    record = store_of(backend).entities.get(arn)
    if record is not None:
        return {"Arn": arn, "Type": record.get("_type", ""), "LineageType": record["_kind"]}
    if ":experiment-trial-component/" not in arn:
        return None
    name = arn.rsplit("/", 1)[-1]
    if name in backend.trial_components:
        return {"Arn": arn, "Type": "TrialComponent", "LineageType": "TrialComponent"}
    for suffix, (jobs_attr, job_type) in JOB_COMPONENTS.items():
        if name.endswith(suffix):
            job = name[: -len(suffix)]
            known = {n.lower() for n in getattr(backend, jobs_attr, {})}
            if job_type == "TrainingJob":
                known |= deleted_training_jobs(backend)  # a deleted job's component stays
            if job in known:
                return {"Arn": arn, "Type": job_type, "LineageType": "TrialComponent"}
    return None


def _name_of(backend: SageMakerModelBackend, arn: str) -> str:
    record = store_of(backend).entities.get(arn) or {}
    for member in ("ArtifactName", "ContextName", "ActionName"):
        if record.get(member):
            return str(record[member])
    return arn.rsplit("/", 1)[-1] if ":experiment-trial-component/" in arn else ""


# --------------------------------------------------------------------------------------------- create


def _create(response: SageMakerResponse, kind: str, lineage_type: str, record: dict[str, Any]) -> str:
    backend = response.sagemaker_backend
    name = record.get(f"{lineage_type}Name")
    if kind == "artifact":
        # AWS names artifacts by a hash; the fake derives a stable one.
        seed = json.dumps([record.get("Source"), record.get("ArtifactType"), name, now_ms().isoformat()])
        name = hashlib.sha256(seed.encode()).hexdigest()[:32]
    elif not name:
        raise _invalid(f"{lineage_type}Name is required")
    arn = _arn(response, kind, str(name))
    now = now_ms()
    with _LOCK:
        entities = store_of(backend).entities
        if kind != "artifact" and arn in entities:
            raise _invalid(f"{lineage_type} {name} already exists.")
        type_member = f"{lineage_type}Type"
        if kind == "artifact":
            store_of(backend).by_uri.setdefault(record["Source"]["SourceUri"], []).append(arn)
        entities[arn] = {
            **{k: v for k, v in record.items() if v is not None},
            f"{lineage_type}Arn": arn,
            "CreationTime": now,
            "LastModifiedTime": now,
            "_kind": lineage_type,
            "_type": record.get(type_member) or "",
        }
    return arn


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if not k.startswith("_")}


def create_artifact(self: SageMakerResponse) -> ActionResult:
    source = self._get_param("Source")
    if not source or not source.get("SourceUri"):
        raise _invalid("Source.SourceUri is required")
    if not self._get_param("ArtifactType"):
        raise _invalid("ArtifactType is required")
    record = {
        "ArtifactName": self._get_param("ArtifactName"),
        "Source": source,
        "ArtifactType": self._get_param("ArtifactType"),
        "Properties": self._get_param("Properties"),
        "MetadataProperties": self._get_param("MetadataProperties"),
    }
    return ActionResult({"ArtifactArn": _create(self, "artifact", "Artifact", record)})


def create_context(self: SageMakerResponse) -> ActionResult:
    record = {
        "ContextName": self._get_param("ContextName"),
        "Source": self._get_param("Source"),
        "ContextType": self._get_param("ContextType"),
        "Description": self._get_param("Description"),
        "Properties": self._get_param("Properties"),
    }
    return ActionResult({"ContextArn": _create(self, "context", "Context", record)})


def create_action(self: SageMakerResponse) -> ActionResult:
    record = {
        "ActionName": self._get_param("ActionName"),
        "Source": self._get_param("Source"),
        "ActionType": self._get_param("ActionType"),
        "Description": self._get_param("Description"),
        "Status": self._get_param("Status"),
        "Properties": self._get_param("Properties"),
    }
    return ActionResult({"ActionArn": _create(self, "action", "Action", record)})


def describe_artifact(self: SageMakerResponse) -> ActionResult:
    arn = self._get_param("ArtifactArn")
    record = store_of(self.sagemaker_backend).entities.get(arn)
    if record is None or record["_kind"] != "Artifact":
        raise ResourceNotFound(f"Artifact {arn} does not exist.")
    return ActionResult(_public(record))


def add_association(self: SageMakerResponse) -> ActionResult:
    backend = self.sagemaker_backend
    source, destination = self._get_param("SourceArn"), self._get_param("DestinationArn")
    association_type = self._get_param("AssociationType")
    if association_type is not None and association_type not in ASSOCIATION_TYPES:
        raise _invalid(f"Value '{association_type}' at 'associationType' failed to satisfy constraint")
    for arn in (source, destination):
        if vertex(backend, arn) is None:
            raise ResourceNotFound(f"{arn} does not exist.")
    with _LOCK:
        store = store_of(backend)
        if (source, destination) not in store.associations:
            store.out_edges.setdefault(source, []).append((source, destination))
            store.in_edges.setdefault(destination, []).append((source, destination))
        store.associations[(source, destination)] = {
            "SourceArn": source,
            "DestinationArn": destination,
            "AssociationType": association_type or "",
            "CreationTime": now_ms(),
        }
    return ActionResult({"SourceArn": source, "DestinationArn": destination})


# --------------------------------------------------------------------------------------------- list and query


def _token(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, sort_keys=True).encode()).decode()


def _offset(token: str | None, digest: str) -> int:
    if not token:
        return 0
    try:
        payload = json.loads(base64.urlsafe_b64decode(token.encode()))
        if payload["q"] != digest:
            raise ValueError("token of another query")
        return int(payload["o"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise _invalid("Invalid pagination token (NextToken) for this request") from None


def _page(items: list[Any], response: SageMakerResponse, query: dict[str, Any], maximum: int, member: str) -> Any:
    size = _limit(response._get_param("MaxResults"), maximum, "maxResults")
    digest = hashlib.sha256(json.dumps(query, sort_keys=True, default=str).encode()).hexdigest()[:16]
    start = _offset(response._get_param("NextToken"), digest)
    page = items[start : start + size]
    result: dict[str, Any] = {member: page}
    if start + size < len(items):
        result["NextToken"] = _token({"q": digest, "o": start + size})
    return result


def _time(value: Any) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC).replace(tzinfo=None)
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed.astimezone(dt.UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _in_window(created: dt.datetime, after: Any, before: Any) -> bool:
    low, high = _time(after), _time(before)
    return (low is None or created > low) and (high is None or created < high)


def _ordered(items: list[dict[str, Any]], sort_order: str | None, key: str) -> list[dict[str, Any]]:
    # ListArtifacts / ListAssociations: SortOrder defaults to Descending (their references).
    return sorted(items, key=lambda r: (r.get(key) or dt.datetime.min, str(r)), reverse=sort_order != "Ascending")


def list_artifacts(self: SageMakerResponse) -> ActionResult:
    param = self._get_param
    wanted_uri, wanted_type = param("SourceUri"), param("ArtifactType")
    store = store_of(self.sagemaker_backend)
    candidates = (
        [store.entities[arn] for arn in store.by_uri.get(wanted_uri, [])]
        if wanted_uri is not None
        else list(store.entities.values())
    )
    records = [
        r
        for r in candidates
        if r["_kind"] == "Artifact"
        and (wanted_uri is None or (r.get("Source") or {}).get("SourceUri") == wanted_uri)
        and (wanted_type is None or r.get("ArtifactType") == wanted_type)
        and _in_window(r["CreationTime"], param("CreatedAfter"), param("CreatedBefore"))
    ]
    summaries = [
        {
            k: r[k]
            for k in ("ArtifactArn", "ArtifactName", "Source", "ArtifactType", "CreationTime", "LastModifiedTime")
            if k in r
        }
        for r in _ordered(records, param("SortOrder"), "CreationTime")
    ]
    query = {"u": wanted_uri, "t": wanted_type, "o": param("SortOrder")}
    return ActionResult(_page(summaries, self, query, MAX_LIST_RESULTS, "ArtifactSummaries"))


def list_associations(self: SageMakerResponse) -> ActionResult:
    param = self._get_param
    backend = self.sagemaker_backend
    rows = []
    store = store_of(backend)
    if param("SourceArn") is not None:
        keys = list(store.out_edges.get(param("SourceArn"), []))
    elif param("DestinationArn") is not None:
        keys = list(store.in_edges.get(param("DestinationArn"), []))
    else:
        keys = list(store.associations)
    for source, destination in keys:
        association = store.associations[(source, destination)]
        source_vertex, destination_vertex = vertex(backend, source), vertex(backend, destination)
        if source_vertex is None or destination_vertex is None:
            continue
        row = {
            **association,
            "SourceType": source_vertex["Type"],
            "DestinationType": destination_vertex["Type"],
            "SourceName": _name_of(backend, source),
            "DestinationName": _name_of(backend, destination),
        }
        checks = {
            "SourceArn": source,
            "DestinationArn": destination,
            "SourceType": row["SourceType"],
            "DestinationType": row["DestinationType"],
            "AssociationType": row["AssociationType"],
        }
        if all(param(k) in (None, v) for k, v in checks.items()) and _in_window(
            association["CreationTime"], param("CreatedAfter"), param("CreatedBefore")
        ):
            rows.append({k: v for k, v in row.items() if v not in (None, "")})
    query = {k: param(k) for k in ("SourceArn", "DestinationArn", "SourceType", "DestinationType", "AssociationType")}
    rows = _ordered(rows, param("SortOrder"), "CreationTime")
    return ActionResult(_page(rows, self, query, MAX_LIST_RESULTS, "AssociationSummaries"))


def walk(backend: SageMakerModelBackend, start: str, direction: str, depth: int) -> tuple[list[str], list[tuple]]:
    """Breadth-first from ``start``: the vertices reached (start excluded) and the associations crossed."""
    store = store_of(backend)
    out_edges, in_edges = store.out_edges, store.in_edges
    seen, order, crossed = {start}, [], {}  # crossed: an ordered set of edges
    frontier = [start]
    for _ in range(depth):
        following: list[str] = []
        for arn in frontier:
            steps = []
            if direction in ("Descendants", "Both"):
                steps += [(edge, edge[1]) for edge in out_edges.get(arn, [])]
            if direction in ("Ascendants", "Both"):
                steps += [(edge, edge[0]) for edge in in_edges.get(arn, [])]
            for edge, neighbour in steps:
                crossed.setdefault(edge, None)
                if neighbour not in seen:
                    seen.add(neighbour)
                    order.append(neighbour)
                    following.append(neighbour)
        frontier = following
    return order, list(crossed)


def query_lineage(self: SageMakerResponse) -> ActionResult:
    param = self._get_param
    backend = self.sagemaker_backend
    starts = param("StartArns") or []
    if len(starts) > 1:
        raise _invalid(
            "1 validation error detected: Value at 'startArns' failed to satisfy constraint: "
            "Member must have length less than or equal to 1"
        )
    direction = param("Direction") or "Both"
    if direction not in DIRECTIONS:
        raise _invalid(f"Value '{direction}' at 'direction' failed to satisfy constraint")
    depth = int(param("MaxDepth") if param("MaxDepth") is not None else MAX_DEPTH)
    if depth > MAX_DEPTH:
        raise _invalid(
            f"Value '{depth}' at 'maxDepth' failed to satisfy constraint: "
            f"Member must have value less than or equal to {MAX_DEPTH}"
        )
    if not starts:
        return ActionResult({"Vertices": [], "Edges": []})
    if vertex(backend, starts[0]) is None:
        raise ResourceNotFound(f"{starts[0]} does not exist.")
    reached, crossed = walk(backend, starts[0], direction, depth)
    filters = param("Filters") or {}
    vertices = [v for v in (vertex(backend, arn) for arn in reached) if v is not None]
    if filters.get("Types"):
        vertices = [v for v in vertices if v["Type"] in filters["Types"]]
    if filters.get("LineageTypes"):
        vertices = [v for v in vertices if v["LineageType"] in filters["LineageTypes"]]
    query = {"s": starts, "d": direction, "m": depth, "f": filters}
    result = _page(vertices, self, query, MAX_QUERY_RESULTS, "Vertices")
    if param("IncludeEdges"):
        # Each page carries the associations that reach its vertices (the walk's own edges).
        on_page = {v["Arn"] for v in result["Vertices"]}
        associations = store_of(backend).associations
        result["Edges"] = [_edge(s, d, associations[(s, d)]) for s, d in crossed if s in on_page or d in on_page]
    else:
        result["Edges"] = []
    return ActionResult(result)


def _edge(source: str, destination: str, association: dict[str, Any]) -> dict[str, str]:
    edge = {"SourceArn": source, "DestinationArn": destination}
    if association.get("AssociationType"):
        edge["AssociationType"] = association["AssociationType"]
    return edge


ACTIONS = {
    "create_artifact": create_artifact,
    "create_context": create_context,
    "create_action": create_action,
    "describe_artifact": describe_artifact,
    "add_association": add_association,
    "list_artifacts": list_artifacts,
    "list_associations": list_associations,
    "query_lineage": query_lineage,
}


def install() -> None:
    """Add the lineage actions to moto's SageMaker response class (moto dispatches by method name)."""
    for name, action in ACTIONS.items():
        set_attr(SageMakerResponse, name, action)
