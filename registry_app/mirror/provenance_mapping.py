"""Provenance records -> rows, pure: which training job made a package, what the job answers say,
how a lineage graph relates to the package, and how two trainings differ.

No database, no AWS: the sync (``mirror.provenance``, ``mirror.lineage``) feeds it API answers and
the review page (``mirror.provenance_selectors``) feeds it rows.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from registry_app.mirror.mapping import canonical_json, parse_time

# botocore TrainingJobName / ProcessingJobName.
JOB_NAME_RE = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
_JOB_ARN_RE = re.compile(r"arn:aws[a-z-]*:sagemaker:([a-z0-9-]*):(\d{12}):(training-job|processing-job)/(.+)")
# SageMaker writes a training job's model to <S3OutputPath>/<TrainingJobName>/output/model.tar.gz.
_MODEL_URL_RE = re.compile(r"s3://[^/]+/(?:.*/)?([^/]+)/output/model\.tar\.gz")
# SageMaker names the trial component of each job <job name>-aws-<kind>-job.
_COMPONENT_SUFFIXES = {"-aws-training-job": "training", "-aws-processing-job": "processing"}
_COMPONENT_TYPES = {"TrainingJob": "training", "SageMakerTrainingJob": "training", "ProcessingJob": "processing"}
SECRET_KEYS = ("Environment",)  # environment variables may hold secrets: never mirrored
MAX_URI = 1024
MAX_URI_BYTES = 2000

# Which source wins when several name a job (the first present): SageMaker's own record first.
PRIORITY = ("lineage", "generated_by", "source_algorithm", "model_data_url", "model_card")


@dataclass(frozen=True)
class Candidate:
    source: str  # one of PRIORITY
    name: str
    account: str = ""  # the job's account when the source says (an ARN); "" = the source's own

    def as_dict(self) -> dict[str, str]:
        return {"from": self.source, "name": self.name, "account": self.account}


@dataclass
class DataRow:
    direction: str  # input / output
    name: str
    s3_uri: str
    data_type: str = ""
    details: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------- which job


def job_from_arn(arn: Any, kind: str = "training-job") -> tuple[str, str] | None:
    """``(account, name)`` of a job ARN of ``kind``; None for anything else (a pipeline execution ARN)."""
    match = _JOB_ARN_RE.fullmatch(str(arn or ""))
    if not match or match.group(3) != kind or not JOB_NAME_RE.fullmatch(match.group(4)):
        return None
    return match.group(2), match.group(4)


def job_from_model_url(url: Any) -> str:
    """The training job named by a model data URL's ``<job>/output/model.tar.gz`` tail, else ""."""
    match = _MODEL_URL_RE.fullmatch(str(url or ""))
    name = match.group(1) if match else ""
    return name if JOB_NAME_RE.fullmatch(name) else ""


def component_job(arn: str) -> tuple[str, str] | None:
    """``(kind, job name)`` of a job's trial component (``.../experiment-trial-component/<job>-aws-training-job``)."""
    if ":experiment-trial-component/" not in arn:
        return None
    name = arn.rsplit("/", 1)[-1]
    for suffix, kind in _COMPONENT_SUFFIXES.items():
        if name.endswith(suffix) and JOB_NAME_RE.fullmatch(name[: -len(suffix)]):
            return kind, name[: -len(suffix)]
    return None  # a component under another name: its job cannot be told from the ARN alone


def is_job_component(entity_type: str) -> bool:
    return entity_type in _COMPONENT_TYPES


def card_training_arn(card_content: Any) -> str:
    """``training_details.training_job_details.training_arn`` of a model card's content."""
    if isinstance(card_content, str):
        try:
            card_content = json.loads(card_content)
        except ValueError:
            return ""
    details = (card_content or {}).get("training_details") if isinstance(card_content, dict) else None
    job = details.get("training_job_details") if isinstance(details, dict) else None
    value = job.get("training_arn") if isinstance(job, dict) else None
    return value if isinstance(value, str) else ""


def job_candidates(record: dict[str, Any], *, card_content: Any = None) -> list[Candidate]:
    """Every name a package record (and its model card) gives for its training job, in PRIORITY order
    (lineage candidates come from the walk and are added by the caller)."""
    found: list[Candidate] = []
    generated_by = job_from_arn((record.get("MetadataProperties") or {}).get("GeneratedBy"))
    if generated_by:
        found.append(Candidate("generated_by", generated_by[1], generated_by[0]))
    for algorithm in (record.get("SourceAlgorithmSpecification") or {}).get("SourceAlgorithms") or []:
        name = job_from_model_url((algorithm or {}).get("ModelDataUrl"))
        if name:
            found.append(Candidate("source_algorithm", name))
    for container in (record.get("InferenceSpecification") or {}).get("Containers") or []:
        name = job_from_model_url((container or {}).get("ModelDataUrl"))
        if name:
            found.append(Candidate("model_data_url", name))
    card = job_from_arn(card_training_arn(card_content))
    if card:
        found.append(Candidate("model_card", card[1], card[0]))
    return found


def choose(candidates: Iterable[Candidate], account: str) -> tuple[Candidate | None, str]:
    """The candidate of the highest-priority source, and a note when sources disagree or the job
    lives in another account (DescribeTrainingJob reads only the caller's own account)."""
    ordered = sorted(candidates, key=lambda c: PRIORITY.index(c.source))
    if not ordered:
        return None, ""
    chosen = ordered[0]
    if chosen.source == "lineage":
        # Trial component names are lower case; another source may spell the same job as created.
        spelled = next((c for c in ordered[1:] if c.name.lower() == chosen.name.lower()), None)
        if spelled is not None:
            chosen = Candidate("lineage", spelled.name, spelled.account)
    notes = []
    others = sorted({c.name for c in ordered if c.name.lower() != chosen.name.lower()})
    if others:
        notes.append(f"Other sources name {', '.join(others)}.")
    if chosen.account and account and chosen.account != account:
        notes.insert(0, f"The job is in account {chosen.account}; this source reads account {account} only.")
    return chosen, " ".join(notes)


def inputs_hash(record: dict[str, Any], card_content: Any = None) -> str:
    """What provenance depends on, hashed: a package whose approval alone changed is not re-walked."""
    spec = record.get("InferenceSpecification") or {}
    relevant = {
        "metadata": record.get("MetadataProperties") or {},
        "models": [c.get("ModelDataUrl") for c in spec.get("Containers") or [] if isinstance(c, dict)],
        "algorithms": record.get("SourceAlgorithmSpecification") or {},
        "card": card_training_arn(card_content),
        "data_version": (record.get("CustomerMetadataProperties") or {}).get("TrainingDataS3VersionId"),
    }
    return hashlib.sha256(canonical_json(relevant).encode()).hexdigest()


# --------------------------------------------------------------------------------------------- job answers


def image_digest(image: str) -> str:
    """``sha256:...`` of an image named by digest (``repo@sha256:...``), else ""."""
    _, at, digest = image.partition("@")
    return digest if at and digest.startswith("sha256:") else ""


def _seconds(start: Any, end: Any) -> int | None:
    started, ended = parse_time(start), parse_time(end)
    if started is None or ended is None or ended < started:
        return None
    return int((ended - started).total_seconds())


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0 else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def bounded_uri(value: Any) -> str:
    """A location as stored (and indexed): at most 1,024 characters and 2,000 UTF-8 bytes."""
    text = str(value or "")[:MAX_URI]
    while len(text.encode("utf-8", "surrogatepass")) > MAX_URI_BYTES:
        text = text[:-16]
    return text


_uri = bounded_uri


def _channel_uri(source: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    s3 = source.get("S3DataSource")
    if isinstance(s3, dict):
        details = {k: s3[k] for k in ("S3DataDistributionType", "AttributeNames", "InstanceGroupNames") if s3.get(k)}
        return _uri(s3.get("S3Uri")), str(s3.get("S3DataType") or ""), details
    fs = source.get("FileSystemDataSource")
    if isinstance(fs, dict):
        kind = str(fs.get("FileSystemType") or "fs").lower()
        return _uri(f"{kind}://{fs.get('FileSystemId', '')}{fs.get('DirectoryPath', '')}"), kind, {}
    return "", "", {}


def training_job_fields(record: dict[str, Any]) -> tuple[dict[str, Any], list[DataRow]]:
    """TrainingJob column values and the job's data rows, from a DescribeTrainingJob answer."""
    algorithm = record.get("AlgorithmSpecification") or {}
    resources = record.get("ResourceConfig") or {}
    output = record.get("OutputDataConfig") or {}
    image = str(algorithm.get("TrainingImage") or "")
    instance_type = str(resources.get("InstanceType") or "")
    instance_count = _int(resources.get("InstanceCount"))
    groups = [g for g in resources.get("InstanceGroups") or [] if isinstance(g, dict)]
    if not instance_type and groups:  # a heterogeneous cluster
        instance_type = ", ".join(f"{g.get('InstanceType', '?')}×{g.get('InstanceCount', '?')}" for g in groups)[:64]
        instance_count = sum(_int(g.get("InstanceCount")) or 0 for g in groups) or None
    started, ended = record.get("TrainingStartTime"), record.get("TrainingEndTime")
    fields = {
        "arn": str(record.get("TrainingJobArn") or ""),
        "status": str(record.get("TrainingJobStatus") or ""),
        "secondary_status": str(record.get("SecondaryStatus") or ""),
        "failure_reason": str(record.get("FailureReason") or ""),
        "hyperparameters": {str(k): str(v) for k, v in (record.get("HyperParameters") or {}).items()},
        "algorithm_name": str(algorithm.get("AlgorithmName") or "")[:256],
        "training_image": image[:255],
        "image_digest": image_digest(image),
        "input_mode": str(algorithm.get("TrainingInputMode") or ""),
        "output_path": _uri(output.get("S3OutputPath")),
        "output_kms_key": str(output.get("KmsKeyId") or ""),
        "model_artifact": _uri((record.get("ModelArtifacts") or {}).get("S3ModelArtifacts")),
        "final_metrics": [
            {"name": str(m.get("MetricName") or ""), "value": m.get("Value")}
            for m in record.get("FinalMetricDataList") or []
            if isinstance(m, dict)
        ],
        "instance_type": instance_type,
        "instance_count": instance_count,
        "volume_size_gb": _int(resources.get("VolumeSizeInGB")),
        "volume_kms_key": str(resources.get("VolumeKmsKeyId") or ""),
        "role_arn": str(record.get("RoleArn") or ""),
        "network_isolation": _bool(record.get("EnableNetworkIsolation")),
        "inter_container_encryption": _bool(record.get("EnableInterContainerTrafficEncryption")),
        "managed_spot": _bool(record.get("EnableManagedSpotTraining")),
        "vpc_config": record.get("VpcConfig") or {},
        "tuning_job_arn": str(record.get("TuningJobArn") or ""),
        "created_at": parse_time(record.get("CreationTime")),
        "started_at": parse_time(started),
        "ended_at": parse_time(ended),
        "duration_s": _int(record.get("TrainingTimeInSeconds")) or _seconds(started, ended),
        "billable_s": _int(record.get("BillableTimeInSeconds")),
        "record": {k: v for k, v in record.items() if k not in SECRET_KEYS},
        "error": "",
        "error_code": "",
        "missing": False,
    }
    rows = []
    for channel in record.get("InputDataConfig") or []:
        if not isinstance(channel, dict):
            continue
        uri, data_type, details = _channel_uri(channel.get("DataSource") or {})
        for key in ("ContentType", "CompressionType", "RecordWrapperType", "InputMode"):
            if channel.get(key):
                details[key] = channel[key]
        if uri:
            rows.append(DataRow("input", str(channel.get("ChannelName") or ""), uri, data_type, details))
    if fields["model_artifact"]:
        rows.append(DataRow("output", "model", fields["model_artifact"]))
    checkpoint = (record.get("CheckpointConfig") or {}).get("S3Uri")
    if checkpoint:
        rows.append(DataRow("output", "checkpoints", _uri(checkpoint)))
    return fields, rows


def processing_job_fields(record: dict[str, Any]) -> tuple[dict[str, Any], list[DataRow]]:
    """ProcessingJob column values and the job's data rows, from a DescribeProcessingJob answer."""
    cluster = (record.get("ProcessingResources") or {}).get("ClusterConfig") or {}
    network = record.get("NetworkConfig") or {}
    outputs = record.get("ProcessingOutputConfig") or {}
    started, ended = record.get("ProcessingStartTime"), record.get("ProcessingEndTime")
    fields = {
        "arn": str(record.get("ProcessingJobArn") or ""),
        "status": str(record.get("ProcessingJobStatus") or ""),
        "exit_message": str(record.get("ExitMessage") or ""),
        "failure_reason": str(record.get("FailureReason") or ""),
        "image_uri": str((record.get("AppSpecification") or {}).get("ImageUri") or "")[:255],
        "role_arn": str(record.get("RoleArn") or ""),
        "instance_type": str(cluster.get("InstanceType") or ""),
        "instance_count": _int(cluster.get("InstanceCount")),
        "volume_size_gb": _int(cluster.get("VolumeSizeInGB")),
        "volume_kms_key": str(cluster.get("VolumeKmsKeyId") or ""),
        "output_kms_key": str(outputs.get("KmsKeyId") or ""),
        "network_isolation": _bool(network.get("EnableNetworkIsolation")),
        "inter_container_encryption": _bool(network.get("EnableInterContainerTrafficEncryption")),
        "training_job_arn": str(record.get("TrainingJobArn") or ""),
        "created_at": parse_time(record.get("CreationTime")),
        "started_at": parse_time(started),
        "ended_at": parse_time(ended),
        "duration_s": _seconds(started, ended),
        "record": {k: v for k, v in record.items() if k not in SECRET_KEYS},
        "error": "",
        "error_code": "",
        "missing": False,
    }
    rows = []
    for item in record.get("ProcessingInputs") or []:
        s3 = (item or {}).get("S3Input") or {}
        if s3.get("S3Uri"):
            details = {k: s3[k] for k in ("LocalPath", "S3InputMode", "S3DataDistributionType") if s3.get(k)}
            rows.append(
                DataRow(
                    "input",
                    str(item.get("InputName") or ""),
                    _uri(s3["S3Uri"]),
                    str(s3.get("S3DataType") or ""),
                    details,
                )
            )
    for item in outputs.get("Outputs") or []:
        s3 = (item or {}).get("S3Output") or {}
        if s3.get("S3Uri"):
            details = {k: s3[k] for k in ("LocalPath", "S3UploadMode") if s3.get(k)}
            rows.append(DataRow("output", str(item.get("OutputName") or ""), _uri(s3["S3Uri"]), "", details))
    return fields, rows


# --------------------------------------------------------------------------------------------- the graph


def relations(root: str, edges: Iterable[tuple[str, str]], arns: Iterable[str]) -> dict[str, tuple[str, int]]:
    """How each vertex relates to the package's artifact ``root``: ``ancestor`` (a path leads from it to
    the root: it went into the package), ``descendant``, or ``related`` (reached otherwise, e.g. an
    evaluation job that read the package's model); with the shortest distance."""
    forward: dict[str, list[str]] = {}
    backward: dict[str, list[str]] = {}
    undirected: dict[str, list[str]] = {}
    for source, destination in edges:
        forward.setdefault(source, []).append(destination)
        backward.setdefault(destination, []).append(source)
        undirected.setdefault(source, []).append(destination)
        undirected.setdefault(destination, []).append(source)
    found: dict[str, tuple[str, int]] = {root: ("self", 0)}
    for relation, graph in (("ancestor", backward), ("descendant", forward), ("related", undirected)):
        for arn, depth in _distances(root, graph).items():
            found.setdefault(arn, (relation, depth))
    for arn in arns:
        found.setdefault(arn, ("related", 0))
    return found


def _distances(start: str, graph: dict[str, list[str]]) -> dict[str, int]:
    seen = {start: 0}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        for neighbour in graph.get(current, []):
            if neighbour not in seen:
                seen[neighbour] = seen[current] + 1
                queue.append(neighbour)
    return seen


def source_version(source: dict[str, Any]) -> str:
    """``S3Version:<id>`` (or ETag / MD5 / Custom) of an artifact's ``Source.SourceTypes``."""
    for item in source.get("SourceTypes") or []:
        if isinstance(item, dict) and item.get("Value"):
            return f"{item.get('SourceIdType', '')}:{item['Value']}"[:1100]
    return ""


# --------------------------------------------------------------------------------------------- differences


@dataclass(frozen=True)
class TrainingDiff:
    kind: str  # hyperparameter, data, image, setting
    name: str
    before: str
    after: str

    @property
    def change(self) -> str:
        return "added" if not self.before else "removed" if not self.after else "changed"


def training_summary(job: Any, *, data_version: str = "") -> dict[str, Any]:
    """What is compared between two trainings, from a TrainingJob row (or anything with its fields)."""
    channels = {
        row.name: row.s3_uri for row in getattr(job, "inputs", []) or [] if getattr(row, "direction", "") == "input"
    }
    return {
        "hyperparameters": dict(getattr(job, "hyperparameters", {}) or {}),
        "data": channels,
        "image": {
            "training image": job.training_image,
            "image digest": job.image_digest,
            "algorithm": job.algorithm_name,
        },
        "setting": {
            "instance type": job.instance_type,
            "instance count": "" if job.instance_count is None else str(job.instance_count),
            "network isolation": "" if job.network_isolation is None else str(job.network_isolation),
            "inter-container encryption": ""
            if job.inter_container_encryption is None
            else str(job.inter_container_encryption),
            "volume KMS key": job.volume_kms_key,
            "role": job.role_arn,
        },
        "data_version": data_version,
    }


def training_differences(current: dict[str, Any], baseline: dict[str, Any]) -> list[TrainingDiff]:
    """Hyperparameters, data channels (and the training data version), image and settings that differ."""
    out: list[TrainingDiff] = []
    for kind in ("hyperparameter", "data", "image", "setting"):
        key = "hyperparameters" if kind == "hyperparameter" else kind
        before, after = baseline.get(key) or {}, current.get(key) or {}
        for name in sorted(set(before) | set(after)):
            old, new = str(before.get(name, "") or ""), str(after.get(name, "") or "")
            if old != new:
                out.append(TrainingDiff(kind, name, old, new))
        if kind == "data" and (baseline.get("data_version") or "") != (current.get("data_version") or ""):
            out.append(
                TrainingDiff(
                    "data",
                    "TrainingDataS3VersionId",
                    baseline.get("data_version") or "",
                    current.get("data_version") or "",
                )
            )
    return out
