"""Links out of the dashboard for what the registry records about a version's origin: the training
job, processing job and pipeline execution (AWS console), the repository and the commit.

Pure functions of registry text, which anyone able to register a package controls: every value is
checked against the exact shape AWS or the Git host gives it, and anything else gets no link ("")
and is shown as text. A link is only ever ``https://`` to a host built here (the AWS console of a
known partition, github.com, gitlab.com) or a repository URL the registry gave that is plain
``http(s)://`` with a host and no user info; ``javascript:``, ``data:``, protocol-relative and
other schemes never become links.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

__all__ = [
    "commit_url",
    "generated_by_url",
    "pipeline_execution_url",
    "processing_job_url",
    "repository_url",
    "training_job_url",
]

# SageMaker resource names: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}; pipeline execution ids are [a-z0-9]{1,...}.
_NAME = re.compile(r"[a-zA-Z0-9](?:-*[a-zA-Z0-9]){0,62}")
_PIPELINE_NAME = re.compile(r"[a-zA-Z0-9](?:-*[a-zA-Z0-9]){0,255}")
_EXECUTION_ID = re.compile(r"[a-zA-Z0-9]{1,64}")
_REGION = re.compile(r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}")
_ACCOUNT = re.compile(r"[0-9]{12}")
_ARN = re.compile(
    r"arn:(?P<partition>aws|aws-cn|aws-us-gov):sagemaker:(?P<region>[^:]*):(?P<account>[^:]*):(?P<resource>.+)"
)
_COMMIT = re.compile(r"[0-9a-fA-F]{7,64}")
_SEGMENT = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,99}")
_SSH_REMOTE = re.compile(r"git@(?P<host>github\.com|gitlab\.com):(?P<path>[^\s:]+)")

# The console's host per partition; GovCloud and China have one host for every region.
_CONSOLE_HOSTS = {
    "aws": "{region}.console.aws.amazon.com",
    "aws-cn": "console.amazonaws.cn",
    "aws-us-gov": "console.amazonaws-us-gov.com",
}
_PARTITION_BY_REGION_PREFIX = (("cn-", "aws-cn"), ("us-gov-", "aws-us-gov"))
COMMIT_HOSTS = ("github.com", "gitlab.com")


def _partition(region: str) -> str:
    return next((p for prefix, p in _PARTITION_BY_REGION_PREFIX if region.startswith(prefix)), "aws")


def _console(region: str, fragment: str, partition: str = "") -> str:
    if not _REGION.fullmatch(region or "") or "-iso" in region:
        return ""  # ISO partitions have no public console
    partition = partition or _partition(region)
    host = _CONSOLE_HOSTS.get(partition)
    if host is None or _partition(region) != partition:
        return ""
    return f"https://{host.format(region=region)}/sagemaker/home?region={region}#/{fragment}"


def _parse_arn(value: str) -> tuple[str, str, str] | None:
    """``(partition, region, resource)`` of a SageMaker ARN with a valid region and account."""
    match = _ARN.fullmatch(value)
    if not match or not _REGION.fullmatch(match["region"]) or not _ACCOUNT.fullmatch(match["account"]):
        return None
    return match["partition"], match["region"], match["resource"]


def _job_url(value: object, region: str, resource_type: str, fragment: str) -> str:
    text = str(value or "").strip()
    partition = ""
    if text.startswith("arn:"):
        parsed = _parse_arn(text)
        if parsed is None:
            return ""
        partition, region, resource = parsed
        kind, _, text = resource.partition("/")
        if kind != resource_type:
            return ""
    if not _NAME.fullmatch(text):
        return ""
    return _console(region, f"{fragment}/{text}", partition)


def training_job_url(value: object, region: str = "") -> str:
    """The console page of a training job, from its name (with the source's region) or its ARN."""
    return _job_url(value, region, "training-job", "jobs")


def processing_job_url(value: object, region: str = "") -> str:
    """The console page of a processing job, from its name (with the source's region) or its ARN."""
    return _job_url(value, region, "processing-job", "processing-jobs")


def pipeline_execution_url(value: object) -> str:
    """The console page of a pipeline execution, from its ARN
    (``arn:aws:sagemaker:<region>:<account>:pipeline/<pipeline>/execution/<id>``)."""
    parsed = _parse_arn(str(value or "").strip())
    if parsed is None:
        return ""
    partition, region, resource = parsed
    parts = resource.split("/")
    if len(parts) != 4 or parts[0] != "pipeline" or parts[2] != "execution":
        return ""
    pipeline, execution = parts[1], parts[3]
    if not _PIPELINE_NAME.fullmatch(pipeline) or not _EXECUTION_ID.fullmatch(execution):
        return ""
    return _console(region, f"pipelines/{pipeline}/executions/{execution}", partition)


def generated_by_url(value: object, region: str = "") -> str:
    """``MetadataProperties.GeneratedBy``: a training or processing job or a pipeline execution ARN."""
    text = str(value or "").strip()
    if not text.startswith("arn:"):
        return ""  # a bare name could be any kind of job
    return pipeline_execution_url(text) or training_job_url(text, region) or processing_job_url(text, region)


def repository_url(value: object) -> str:
    """The repository as a link: a plain ``http(s)://host/...`` URL as given (no user info, no
    control characters or spaces), or a ``git@github.com:owner/repo.git`` remote as its https page."""
    text = str(value or "").strip()
    if not text or len(text) > 2048 or not text.isprintable() or any(c in text for c in ' "<>\\`'):
        return ""
    ssh = _SSH_REMOTE.fullmatch(text)
    if ssh:
        path = _repo_path(ssh["path"])
        return f"https://{ssh['host']}/{path}" if path else ""
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError for a malformed port
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return ""
    if not re.fullmatch(r"[A-Za-z0-9.-]+", parts.hostname) or (port is not None and not 0 < port < 65536):
        return ""
    if not text.lower().startswith(("http://", "https://")):
        return ""  # e.g. "https:/x" or "https:\\\\x"
    return text


def _repo_path(path: str) -> str:
    """``owner/repo`` (GitLab: ``group/sub/repo``) without ``.git`` and slashes, or "" when any
    segment is not a plain name."""
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[:-4]
    segments = path.split("/")
    if len(segments) < 2 or not all(_SEGMENT.fullmatch(s) and s not in (".", "..") for s in segments):
        return ""
    return "/".join(segments)


def commit_url(repository: object, commit: object) -> str:
    """The commit's page on github.com or gitlab.com (only those hosts: their URL shapes are known)."""
    sha = str(commit or "").strip()
    if not _COMMIT.fullmatch(sha):
        return ""
    repo = repository_url(repository)
    if not repo:
        return ""
    parts = urlsplit(repo)
    host = (parts.hostname or "").lower()
    if host.startswith("www."):
        host = host[4:]
    if host not in COMMIT_HOSTS or parts.port not in (None, 443) or parts.query or parts.fragment:
        return ""
    path = _repo_path(parts.path)
    if not path or (host == "github.com" and path.count("/") != 1):
        return ""
    sha = quote(sha.lower())
    return (
        f"https://github.com/{path}/commit/{sha}"
        if host == "github.com"
        else f"https://gitlab.com/{path}/-/commit/{sha}"
    )
