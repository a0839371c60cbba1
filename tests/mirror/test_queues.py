"""Celery queues by kind: what Celery actually routes where (read from the app, not the settings)."""

from __future__ import annotations

import os

import pytest
from django.conf import settings

import registry_app.tasks  # noqa: F401  (registers the tasks, as the worker does)
from governance.celery import app

KINDS = {
    "sync": [
        "sync_registry",
        "sync_shard",
        "sync_all_sources",
        "close_abandoned_sync_runs",
        "sync_all_endpoints",
        "poll_all_event_queues",
    ],
    "push": ["push", "resend_stuck_pushes", "refresh_package", "verify_review_state"],
    "audit": [
        "ingest_audit",
        "ingest_audit_all",
        "anchor_audit",
        "verify_audit",
        "backfill_audit",
        "backfill_audit_all",
    ],
    "email": [
        "notify_review_requested",
        "notify_decided",
        "notify_conflict",
        "send_sla_reminders",
        "send_revalidation_reminders",
        "sweep_notifications",
        "notify_outside_decisions",
    ],
}


def routed_queue(task_name: str) -> str:
    return str(app.amqp.router.route({}, task_name)["queue"].name)


@pytest.mark.parametrize(("kind", "task"), [(kind, task) for kind, tasks in KINDS.items() for task in tasks])
def test_each_task_goes_to_its_kinds_queue(kind: str, task: str) -> None:
    name = f"registry_app.tasks.{task}"
    app.finalize()
    assert name in app.tasks  # a route naming no task would be ignored silently
    assert routed_queue(name) == settings.TASK_QUEUE_NAMES[kind]


def test_every_registry_task_has_a_kind() -> None:
    """A new task must choose its queue: left on the default queue it would share a worker with
    nothing in particular (and a long task there would delay every other unrouted one)."""
    app.finalize()
    ours = {name for name in app.tasks if name.startswith("registry_app.tasks.")}
    routed = {f"registry_app.tasks.{task}" for tasks in KINDS.values() for task in tasks}
    assert ours == routed, ours ^ routed


def test_unrouted_tasks_use_the_default_queue() -> None:
    assert routed_queue("somebody_else.tasks.anything") == app.conf.task_default_queue


def test_queue_names_are_per_test_process() -> None:
    """Test processes sharing one Redis (xdist workers, CI jobs) never consume each other's tasks."""
    default = app.conf.task_default_queue
    assert default.startswith("test-") and default.endswith(f"-{os.getpid()}")
    assert os.environ.get("PYTEST_XDIST_WORKER", "main") in default
    consumed = set(app.amqp.queues)
    assert consumed == {default, *(f"{default}-{kind}" for kind in KINDS)}
    assert f"{default}-" == settings.CELERY_QUEUE_PREFIX


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("", ["celery", "audit", "celery", "email", "push", "sync", "push"]),
        ("acme-", ["acme-celery", "acme-audit", "acme-celery", "acme-email", "acme-push", "acme-sync", "acme-push"]),
    ],
)
def test_production_queue_names(prefix: str, expected: list[str]) -> None:
    """Outside tests: the plain names the docs, compose file and demo use; CELERY_QUEUE_PREFIX
    (two deployments on one Redis) renames every queue, the default one included."""
    import subprocess
    import sys

    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'governance.settings'; django.setup();"
        "from governance.celery import app;"
        "print(app.conf.task_default_queue, *sorted(app.amqp.queues),"
        " app.amqp.router.route({}, 'registry_app.tasks.push')['queue'].name)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "PYTEST"))}
    env.update(DEBUG="true", SECRET_KEY="a-development-key", VAR_DIR=str(settings.VAR_DIR), CELERY_QUEUE_PREFIX=prefix)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == expected


def test_compose_runs_one_worker_per_queue_with_health_checks() -> None:
    """docker-compose.yml consumes every production queue exactly once, and checks every service
    the stack depends on (the file itself is validated with `docker compose config -q`)."""
    from pathlib import Path

    import yaml

    compose = yaml.safe_load((Path(settings.BASE_DIR) / "docker-compose.yml").read_text())
    services = compose["services"]
    consumed: list[str] = []
    for name, service in services.items():
        command = service.get("command") or []
        if command[:4] == ["celery", "-A", "governance", "worker"]:
            queues = command[command.index("-Q") + 1].replace("${CELERY_QUEUE_PREFIX:-}", "")
            consumed.extend(queues.split(","))
            assert "inspect ping" in " ".join(service["healthcheck"]["test"]), name
            assert service["environment"]["WORKER_NAME"] == command[command.index("-n") + 1].split("@")[0]
    assert sorted(consumed) == sorted(["celery", *KINDS])
    beats = [s for s in services.values() if (s.get("command") or [])[:4] == ["celery", "-A", "governance", "beat"]]
    assert len(beats) == 1
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    for name in ("moto", "mailpit"):
        assert services[name]["healthcheck"]["test"], name
