"""Fixtures for the governance services: personas, notification spies, an outbox runner, moto packages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import pytest

from registry_app.mirror.execute import sync_source
from registry_app.models import ModelPackage, RegistrySource
from tests import aws_helpers as h
from tests.personas import ROLE_OF, make_user  # noqa: F401 - re-exported for the review tests


@dataclass
class Notifications:
    review_requested: mock.MagicMock
    decided: mock.MagicMock
    conflict: mock.MagicMock


@pytest.fixture(autouse=True)
def notifications() -> Iterator[Notifications]:
    """Spy on the notification entry points (another module owns them; they must just be called)."""
    base = "registry_app.notifications.enqueue"
    with (
        mock.patch(f"{base}.enqueue_review_requested", create=True) as review,
        mock.patch(f"{base}.enqueue_decided", create=True) as decided,
        mock.patch(f"{base}.enqueue_conflict", create=True) as conflict,
    ):
        yield Notifications(review, decided, conflict)


@dataclass
class Outbox:
    """Stands in for the broker: records every ``push_task`` sent, and runs them on demand."""

    capture: Callable[..., AbstractContextManager[Any]]
    queued: list[str] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)

    def drain(self, *, limit: int = 50) -> list[Any]:
        """Run queued tasks (eagerly, with Celery's retries) until none is left."""
        from registry_app.tasks import push_task

        ran = []
        while self.queued and limit:
            limit -= 1
            push_id = self.queued.pop(0)
            with self.capture(execute=True):
                result = push_task.apply(args=[push_id])
            ran.append(result)
        self.results.extend(ran)
        return ran


@pytest.fixture
def outbox(django_capture_on_commit_callbacks: Any) -> Iterator[Outbox]:
    box = Outbox(capture=django_capture_on_commit_callbacks)

    def fake_apply_async(args: list[Any] | None = None, **_: Any) -> None:
        box.queued.append(str((args or [])[0]))

    def refresh_now(args: list[Any] | None = None, **_: Any) -> None:
        # The mirror refresh a push enqueues runs at once, as a worker would right after the push.
        from registry_app.tasks import refresh_package_task

        refresh_package_task.apply(args=args)

    with (
        mock.patch("registry_app.tasks.push_task.apply_async", side_effect=fake_apply_async),
        mock.patch("registry_app.tasks.refresh_package_task.apply_async", side_effect=refresh_now),
    ):
        yield box


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    """No real sleeping in botocore's retries; few attempts so failures surface quickly."""
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda s: None)
    settings.AWS_MAX_ATTEMPTS = 3


@dataclass
class Registry:
    sm: Any
    source: RegistrySource
    arns: dict[str, str]

    def package(self, key: str) -> ModelPackage:
        return ModelPackage.objects.select_related("group", "source").get(arn=self.arns[key])

    def describe(self, key: str) -> dict[str, Any]:
        described = dict(self.sm.describe_model_package(ModelPackageName=self.arns[key]))
        described.pop("ResponseMetadata", None)
        return described

    def sync(self) -> None:
        sync_source(self.source, mode="full")


@pytest.fixture
def registry(aws: None, db: None) -> Registry:
    """moto: a group with a pending (v1) and an approved (v2) and a pending (v3) version, synced."""
    sm, s3 = h.clients()
    h.make_bucket(s3)
    report = h.put_json(s3, "credit/1/evaluation.json", h.BINARY_REPORT)
    h.create_group(sm, "credit-risk", "Retail PD model", {"RiskTier": "High"})
    arns = {
        "pending": h.create_package(
            sm, "credit-risk", report_uri=report, metadata={"GitCommitSha": "0123abc", "owner": "team-risk"}
        ),
        "approved": h.create_package(sm, "credit-risk", status="Approved", report_uri=report),
        "pending2": h.create_package(sm, "credit-risk", report_uri=report),
    }
    source = RegistrySource.objects.create(name="prod", region=h.REGION)
    reg = Registry(sm, source, arns)
    reg.sync()
    return reg


@dataclass
class UpdateCounter:
    """UpdateModelPackage requests that moto processed, with their ClientToken.

    ``tests.aws_helpers.inject_errors`` answers an attempt with an error but moto still sees the
    request (botocore runs every ``before-send`` handler). ``reject_before_processing`` makes the
    injected attempts not reach moto, like a throttled request that AWS refused; plain
    ``inject_errors`` then models "applied, but the response was lost".
    """

    calls: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0
    _drop_next: int = 0
    _token: str | None = None

    @property
    def count(self) -> int:
        return len(self.calls)

    def reject_before_processing(self, boto_client: Any, errors: list[tuple[int, str]]) -> list[int]:
        from tests import aws_helpers as h

        attempts = h.inject_errors(boto_client, "UpdateModelPackage", errors)
        self._drop_next += sum(1 for _, code in errors if code != "Timeout")  # a timeout never gets there
        return attempts


@pytest.fixture
def updates(monkeypatch: pytest.MonkeyPatch) -> UpdateCounter:
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    counter = UpdateCounter()
    backend_update = SageMakerModelBackend.update_model_package
    response_update = SageMakerResponse.update_model_package

    def remember_token(self: Any) -> Any:
        counter._token = self._get_param("ClientToken")
        return response_update(self)

    def counting(self: Any, model_package_arn: str, *args: Any, **kwargs: Any) -> str:
        if counter._drop_next:
            counter._drop_next -= 1
            counter.dropped += 1
            return model_package_arn  # refused before processing; botocore sees the injected error
        counter.calls.append({"arn": model_package_arn, "token": counter._token, **kwargs})
        return backend_update(self, model_package_arn, *args, **kwargs)

    monkeypatch.setattr(SageMakerResponse, "update_model_package", remember_token)
    monkeypatch.setattr(SageMakerModelBackend, "update_model_package", counting)
    return counter
