"""Fixtures of the adapter's contract tests: a RegistryClient / CloudTrailReader whose botocore
clients are stubbed (no network, no moto), checked to have used every stubbed response."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from registry_app.aws.cloudtrail import CloudTrailReader, RateLimiter
from registry_app.aws.sagemaker import RegistryClient
from registry_app.aws.session import SourceConfig
from tests.aws.contracts import REGION, Stubs


@pytest.fixture
def cfg() -> SourceConfig:
    return SourceConfig(name="prod", region=REGION)


@pytest.fixture
def client(cfg: SourceConfig) -> RegistryClient:
    return RegistryClient(cfg)


@pytest.fixture
def stubs(request: pytest.FixtureRequest, client: RegistryClient) -> Iterator[Stubs]:
    stubs = Stubs(client.client)
    yield stubs
    stubs.done(getattr(request.function, "__contract__", ()))


class _NoWait:
    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)


@pytest.fixture
def reader(cfg: SourceConfig) -> CloudTrailReader:
    sleep = _NoWait()
    clock = iter(range(10**6))
    limiter = RateLimiter(1000.0, clock=lambda: float(next(clock)), sleep=sleep)
    return CloudTrailReader(cfg, limiter=limiter, sleep=sleep)


@pytest.fixture
def trail_stubs(request: pytest.FixtureRequest, reader: CloudTrailReader) -> Iterator[Stubs]:
    stubs = Stubs(lambda service: reader._cloudtrail() if service == "cloudtrail" else reader.client(service))
    yield stubs
    stubs.done(getattr(request.function, "__contract__", ()))
