"""Training and processing jobs as AWS describes them, plus a hook that "runs" a job.

What moto 5.2.5 does differently (docs/aws-fake.md, section 7):

* A missing job: moto answers ``Could not find training job '<arn>'.``; AWS answers
  ``ValidationException: Requested resource not found.`` for DescribeTrainingJob and ``Could not find
  requested job with name <name>`` for DescribeProcessingJob (the messages AWS's own sagemaker-controller
  recognises as 404 in its generator.yaml).
* CreateProcessingJob: moto drops ``ProcessingResources`` (a required member of the Describe answer).
* CreateTrainingJob: moto replaces the request's ``MetricDefinitions`` with a made-up one.
* DeleteTrainingJob: not in moto. AWS deletes only a job in a terminal state, and "all of the
  metadata for the training job is lost" (botocore's documentation): Describe answers not found.
  The job's trial component stays in the lineage graph (an assumption: nothing says it goes).

Jobs still complete the moment they are created, as in moto. ``finish_training_job`` /
``finish_processing_job`` set what a real run leaves behind (start and end times, the seconds trained
and billed, the final metric values, the final status), in-process or, given ``endpoint_url``, over
HTTP on the fake server's ``/moto-api/aws-fake/finish-job`` route (``scripts/demo.py`` seeds from
another process).
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

from moto.core.responses import ActionResult
from moto.moto_api._internal import urls as moto_api_urls
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends
from moto.sagemaker.responses import SageMakerResponse

from registry_app.devtools.aws_fake._patching import set_attr, set_item, wraps_original
from registry_app.devtools.aws_fake.hooks import UnknownResource, _parse_time, _post, _route
from registry_app.devtools.aws_fake.identity import to_naive_utc

FINISH_JOB_PATH = "/moto-api/aws-fake/finish-job"
DELETED_ATTR = "aws_fake_deleted_training_jobs"  # on the backend: lower-cased names of deleted jobs
TERMINAL = ("Completed", "Failed", "Stopped")
_ARN_RE = re.compile(r"arn:[^:]+:sagemaker:([a-z0-9-]+):(\d{12}):(training-job|processing-job)/(.+)")


def _job(arn: str) -> Any:
    match = _ARN_RE.fullmatch(arn or "")
    if not match:
        raise UnknownResource(f"not a SageMaker training or processing job ARN: {arn!r}")
    backend = sagemaker_backends[match.group(2)][match.group(1)]
    jobs = backend.training_jobs if match.group(3) == "training-job" else backend.processing_jobs
    wanted = match.group(4).lower()
    job = next((j for name, j in jobs.items() if name.lower() == wanted), None)
    if job is None:
        raise UnknownResource(f"no job {arn}")
    return job


def finish_training_job(
    arn: str,
    *,
    started: dt.datetime,
    ended: dt.datetime,
    final_metrics: Iterable[tuple[str, float]] = (),
    status: str = "Completed",
    failure_reason: str = "",
    endpoint_url: str | None = None,
) -> None:
    """Record a finished run of the training job ``arn``: times, seconds trained/billed, metrics, status."""
    if endpoint_url:
        payload = {
            "arn": arn,
            "started": started,
            "ended": ended,
            "final_metrics": [[name, value] for name, value in final_metrics],
            "status": status,
            "failure_reason": failure_reason,
        }
        _post(endpoint_url, FINISH_JOB_PATH, payload)
        return
    job = _job(arn)
    start, end = to_naive_utc(started), to_naive_utc(ended)
    job.creation_time = start - dt.timedelta(minutes=2)  # the instances are provisioned first
    job.training_start_time = start
    job.training_end_time = end
    job.last_modified_time = end
    job.training_job_status = status
    job.secondary_status = status
    seconds = max(0, int((end - start).total_seconds()))
    job.training_time_in_seconds = seconds
    job.billable_time_in_seconds = seconds
    job.secondary_status_transitions = [
        {"Status": "Starting", "StartTime": job.creation_time, "EndTime": start},
        {"Status": "Training", "StartTime": start, "EndTime": end},
        {"Status": status, "StartTime": end, "EndTime": end},
    ]
    job.final_metric_data_list = [{"MetricName": n, "Value": float(v), "Timestamp": end} for n, v in final_metrics]
    if failure_reason:
        job.failure_reason = failure_reason


def finish_processing_job(
    arn: str,
    *,
    started: dt.datetime,
    ended: dt.datetime,
    status: str = "Completed",
    endpoint_url: str | None = None,
) -> None:
    """Record a finished run of the processing job ``arn``."""
    if endpoint_url:
        _post(endpoint_url, FINISH_JOB_PATH, {"arn": arn, "started": started, "ended": ended, "status": status})
        return
    job = _job(arn)
    start, end = to_naive_utc(started), to_naive_utc(ended)
    job.creation_time = start - dt.timedelta(minutes=1)
    job.processing_start_time = start
    job.processing_end_time = end
    job.last_modified_time = end
    job.processing_job_status = status


def _apply_finish(body: dict[str, Any]) -> None:
    started = _parse_time(body["started"]) or dt.datetime.now(dt.UTC)
    ended = _parse_time(body["ended"]) or started
    if ":training-job/" in str(body["arn"]):
        finish_training_job(
            body["arn"],
            started=started,
            ended=ended,
            final_metrics=[(str(n), float(v)) for n, v in body.get("final_metrics") or []],
            status=body.get("status") or "Completed",
            failure_reason=body.get("failure_reason") or "",
        )
    else:
        finish_processing_job(body["arn"], started=started, ended=ended, status=body.get("status") or "Completed")


def deleted_training_jobs(backend: SageMakerModelBackend) -> set[str]:
    return set(backend.__dict__.get(DELETED_ATTR, ()))


def delete_training_job(self: SageMakerResponse) -> ActionResult:
    backend = self.sagemaker_backend
    name = self._get_param("TrainingJobName")
    job = backend.training_jobs.get(name)
    if job is None:
        raise ValidationError(message="Requested resource not found.")
    if job.training_job_status not in TERMINAL:
        raise ValidationError(
            message=f"Training job {name} is in status {job.training_job_status}; it cannot be deleted."
        )
    del backend.training_jobs[name]
    backend.__dict__.setdefault(DELETED_ATTR, set()).add(name.lower())
    return ActionResult({})


def install() -> None:
    @wraps_original(SageMakerModelBackend, "describe_training_job")
    def describe_training_job(moto: Any, self: SageMakerModelBackend, training_job_name: str) -> dict[str, Any]:
        if training_job_name not in self.training_jobs:
            raise ValidationError(message="Requested resource not found.")
        return moto(self, training_job_name)  # type: ignore[no-any-return]

    @wraps_original(SageMakerModelBackend, "describe_processing_job")
    def describe_processing_job(moto: Any, self: SageMakerModelBackend, processing_job_name: str) -> dict[str, Any]:
        if processing_job_name not in self.processing_jobs:
            raise ValidationError(message=f"Could not find requested job with name {processing_job_name}")
        return moto(self, processing_job_name)  # type: ignore[no-any-return]

    @wraps_original(SageMakerResponse, "create_processing_job")
    def create_processing_job(moto: Any, self: SageMakerResponse) -> ActionResult:
        result = moto(self)
        job = self.sagemaker_backend.processing_jobs[self._get_param("ProcessingJobName")]
        job.processing_resources = self._get_param("ProcessingResources")
        job.processing_start_time = job.creation_time
        return result

    @wraps_original(SageMakerResponse, "create_training_job")
    def create_training_job(moto: Any, self: SageMakerResponse) -> ActionResult:
        requested = copy.deepcopy((self._get_param("AlgorithmSpecification") or {}).get("MetricDefinitions"))
        result = moto(self)
        job = self.sagemaker_backend.training_jobs[self._get_param("TrainingJobName")]
        if requested is not None:
            job.algorithm_specification["MetricDefinitions"] = requested
        else:
            job.algorithm_specification.pop("MetricDefinitions", None)
        return result

    set_attr(SageMakerResponse, "delete_training_job", delete_training_job)
    set_item(moto_api_urls.url_paths, "{0}" + FINISH_JOB_PATH, _route(_apply_finish))
