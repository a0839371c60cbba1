"""Celery task events: start/finish/failure/retry lines with task_id, task_name, source and request_id."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from celery import Task, shared_task

from registry_app.models import PushOutbox, SyncRun
from registry_app.models.registry import ApprovalStatus
from registry_app.ops import celery_signals
from registry_app.ops.logs import current, log_context
from tests.factories import ModelPackageFactory, RegistrySourceFactory, SyncRunFactory
from tests.ops.conftest import JsonLines

log = logging.getLogger("tests.ops.tasks")


@shared_task(name="tests.ops.say", ignore_result=True)
def say(source_id: int, text: str) -> str:
    log.info("inside: %s", text)
    return text


@shared_task(name="tests.ops.explode", ignore_result=True)
def explode() -> None:
    raise RuntimeError("kaboom")


@shared_task(name="tests.ops.flaky", bind=True, max_retries=1, ignore_result=True)
def flaky(self: Task) -> str:
    if self.request.retries == 0:
        raise self.retry(exc=TimeoutError("slow"), countdown=0)
    return "second time lucky"


@pytest.fixture
def say_concerns_a_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolve ``say``'s first argument like ``ingest_audit``'s (a source id)."""
    monkeypatch.setitem(celery_signals.SOURCE_OF, say.name, celery_signals.SOURCE_OF["registry_app.tasks.ingest_audit"])


def task_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] in ("registry_app.tasks.events", log.name)]


@pytest.mark.django_db
def test_task_start_inside_and_finish_lines_carry_the_task_context(
    json_logs: JsonLines, say_concerns_a_source: None
) -> None:
    source = RegistrySourceFactory(name="prod-eu")

    result = say.apply(args=[source.pk, "hello"], task_id="task-123")

    assert result.get() == "hello"
    started, inside, finished = task_lines(json_logs())
    for line in (started, inside, finished):
        assert line["task_id"] == "task-123"
        assert line["task_name"] == "tests.ops.say"
        assert line["source"] == "prod-eu"
        assert line["request_id"] is None  # not sent from a request
    assert started["event"] == "task_started"
    assert inside["message"] == "inside: hello"
    assert finished["event"] == "task_finished"
    assert finished["state"] == "SUCCESS"
    assert isinstance(finished["runtime_ms"], float) and finished["runtime_ms"] >= 0
    assert current() == {}  # unbound after the task
    assert celery_signals._running == {}


@pytest.mark.django_db
def test_a_failing_task_logs_its_error_and_a_failure_state(json_logs: JsonLines) -> None:
    result = explode.apply(task_id="task-boom")
    assert result.state == "FAILURE"
    lines = task_lines(json_logs())
    failed = next(line for line in lines if line.get("event") == "task_failed")
    finished = next(line for line in lines if line.get("event") == "task_finished")
    assert failed["level"] == "ERROR"
    assert failed["error_type"] == "RuntimeError"
    assert failed["message"] == "task failed: RuntimeError: kaboom"
    assert failed["task_id"] == "task-boom"
    assert finished["state"] == "FAILURE"
    assert current() == {}


@pytest.mark.django_db
def test_a_retry_is_logged(json_logs: JsonLines) -> None:
    result = flaky.apply(task_id="task-flaky")
    assert result.get() == "second time lucky"
    retry = next(line for line in task_lines(json_logs()) if line.get("event") == "task_retry")
    assert retry["level"] == "WARNING"
    assert "slow" in retry["message"]
    assert retry["task_id"] == "task-flaky"


@pytest.mark.django_db
def test_an_eager_task_inside_a_request_keeps_the_request_id(json_logs: JsonLines) -> None:
    with log_context(request_id="req-eager", user="ann"):
        say.apply(args=[0, "x"])
    started = task_lines(json_logs())[0]
    assert started["request_id"] == "req-eager"


def test_publishing_from_a_request_adds_the_request_id_header() -> None:
    headers: dict[str, Any] = {"id": "t-1"}
    celery_signals.propagate_request_id(headers=headers)
    assert celery_signals.REQUEST_ID_HEADER not in headers  # nothing bound: nothing added
    with log_context(request_id="req-55"):
        celery_signals.propagate_request_id(headers=headers)
    assert headers[celery_signals.REQUEST_ID_HEADER] == "req-55"


@pytest.mark.django_db
def test_sources_of_the_real_tasks() -> None:
    source = RegistrySourceFactory(name="acme-prod")
    run = SyncRunFactory(source=source, status=SyncRun.Status.QUEUED)
    package = ModelPackageFactory(group__source=source, approval_status=ApprovalStatus.PENDING)
    push = PushOutbox.objects.create(
        package=package, kind=PushOutbox.Kind.FLAGS, expected_status="PendingManualApproval"
    )

    assert celery_signals.task_source("registry_app.tasks.sync_registry", [run.pk], {}) == "acme-prod"
    assert celery_signals.task_source("registry_app.tasks.ingest_audit", [source.pk], {}) == "acme-prod"
    assert celery_signals.task_source("registry_app.tasks.push", [str(push.pk)], {}) == "acme-prod"
    assert celery_signals.task_source("registry_app.tasks.push", [], {"push_id": str(push.pk)}) == "acme-prod"
    assert celery_signals.task_source("registry_app.tasks.sync_registry", [999999], {}) is None
    assert celery_signals.task_source("registry_app.tasks.push", ["not-a-uuid"], {}) is None
    assert celery_signals.task_source("registry_app.tasks.notify_decided", [1], {}) is None


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_worker_logs_the_request_id_of_the_request_that_sent_the_task(
    celery_worker_live: Any, json_logs: JsonLines, say_concerns_a_source: None
) -> None:
    source = RegistrySourceFactory(name="live-src")
    with log_context(request_id="req-live-1", user="ann"):
        sent = say.delay(source.pk, "from a request")

    deadline = time.monotonic() + 30
    finished: list[dict[str, Any]] = []
    while not finished and time.monotonic() < deadline:
        finished = [line for line in task_lines(json_logs()) if line.get("event") == "task_finished"]
        time.sleep(0.1)
    assert finished, "the worker did not run the task"
    inside = next(line for line in task_lines(json_logs()) if line["message"] == "inside: from a request")
    for line in (inside, finished[0]):
        assert line["request_id"] == "req-live-1"
        assert line["task_id"] == sent.id
        assert line["source"] == "live-src"
        assert line["user"] is None  # the user is not carried into tasks
