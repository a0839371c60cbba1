"""Celery task events as structured log lines, with the log context bound for each task.

Imported once by ``governance/celery.py``, so workers, beat and the web process (which publishes)
all connect the same receivers:

* ``setup_logging``: Celery leaves logging alone (no root-logger hijack); Django's
  ``settings.LOGGING`` (JSON or plain, see ``LOG_FORMAT``) stays in force in workers and beat.
* ``before_task_publish``: a task sent while handling a request (or from another task) carries
  that ``request_id`` in a message header, so its log lines can be joined with the request's.
* ``task_prerun``: binds ``task_id``, ``task_name``, the propagated ``request_id`` and, for tasks
  about one registry source (``SOURCE_OF``), the source's name (one indexed query), then logs
  "task started".
* ``task_postrun``: logs "task finished" with ``state`` and ``runtime_ms``, then unbinds.
* ``task_failure`` / ``task_retry``: one line each with the exception's type and message (Celery
  itself logs the traceback).

Receivers never raise: a logging aid must not fail a task.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from contextvars import Token
from typing import Any

from celery import signals

from registry_app.ops.logs import bind, current, reset

log = logging.getLogger("registry_app.tasks.events")

REQUEST_ID_HEADER = "governance_request_id"


def _sync_run_source(run_id: Any) -> str | None:
    from registry_app.models import SyncRun

    return SyncRun.objects.filter(pk=run_id).values_list("source__name", flat=True).first()


def _source_name(source_id: Any) -> str | None:
    from registry_app.models import RegistrySource

    return RegistrySource.objects.filter(pk=source_id).values_list("name", flat=True).first()


def _push_source(push_id: Any) -> str | None:
    from registry_app.models import PushOutbox

    return PushOutbox.objects.filter(pk=push_id).values_list("package__source__name", flat=True).first()


# Tasks that concern one registry source, and how to find it from their first argument.
SOURCE_OF: dict[str, Callable[[Any], str | None]] = {
    "registry_app.tasks.sync_registry": _sync_run_source,
    "registry_app.tasks.ingest_audit": _source_name,
    "registry_app.tasks.push": _push_source,
}

# task id -> (context token, start time); one entry per running task in this process.
_running: dict[str, tuple[Token[Any], float]] = {}


def task_source(task_name: str, args: Any, kwargs: Any) -> str | None:
    resolve = SOURCE_OF.get(task_name)
    if resolve is None:
        return None
    first = args[0] if args else next(iter((kwargs or {}).values()), None)
    if first is None:
        return None
    try:
        return resolve(first)
    except Exception:  # noqa: BLE001 - a bad argument or an unreachable database: log without the source
        log.debug("could not resolve the source of %s(%r)", task_name, first, exc_info=True)
        return None


@signals.setup_logging.connect(weak=False, dispatch_uid="governance.setup_logging")
def keep_django_logging(**_: Any) -> None:
    """Answering this signal stops Celery from replacing the root handlers with its own format."""
    from django.apps import apps

    if not apps.ready:  # django.setup() applies settings.LOGGING
        import django

        django.setup()


@signals.before_task_publish.connect(weak=False, dispatch_uid="governance.propagate_request_id")
def propagate_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    request_id = current().get("request_id")
    if request_id and headers is not None and not headers.get(REQUEST_ID_HEADER):
        headers[REQUEST_ID_HEADER] = request_id


@signals.task_prerun.connect(weak=False, dispatch_uid="governance.task_prerun")
def task_started(task_id: str | None = None, task: Any = None, args: Any = None, kwargs: Any = None, **_: Any) -> None:
    name = str(getattr(task, "name", "") or "")
    request = getattr(task, "request", None)
    token = bind(
        task_id=task_id,
        task_name=name or None,
        # From the message header; an eager task run inside a request keeps that request's id.
        request_id=getattr(request, REQUEST_ID_HEADER, None) or current().get("request_id"),
        source=task_source(name, args, kwargs),
    )
    _running[str(task_id)] = (token, time.perf_counter())
    log.info("task started: %s", name, extra={"event": "task_started"})


@signals.task_postrun.connect(weak=False, dispatch_uid="governance.task_postrun")
def task_finished(task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any) -> None:
    entry = _running.pop(str(task_id), None)
    runtime_ms = round((time.perf_counter() - entry[1]) * 1000.0, 1) if entry else None
    try:
        log.info(
            "task finished: %s %s",
            getattr(task, "name", ""),
            state,
            extra={"event": "task_finished", "state": state, "runtime_ms": runtime_ms},
        )
    finally:
        if entry is not None:
            # ValueError: bound in another context (a pool that moved the task): nothing to undo here.
            with contextlib.suppress(ValueError):
                reset(entry[0])


@signals.task_failure.connect(weak=False, dispatch_uid="governance.task_failure")
def task_failed(task_id: str | None = None, exception: BaseException | None = None, **_: Any) -> None:
    log.error(
        "task failed: %s: %s",
        type(exception).__name__,
        exception,
        extra={"event": "task_failed", "error_type": type(exception).__name__},
    )


@signals.task_retry.connect(weak=False, dispatch_uid="governance.task_retry")
def task_retried(request: Any = None, reason: Any = None, **_: Any) -> None:
    log.warning(
        "task retry: %s",
        reason,
        extra={"event": "task_retry", "retries": getattr(request, "retries", None)},
    )
