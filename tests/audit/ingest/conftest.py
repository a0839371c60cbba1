"""Fixtures for the CloudTrail ingest tests: a source with a trail bucket in moto S3, a fake clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from registry_app.aws.cloudtrail import clear_limiters
from registry_app.models import RegistrySource
from tests.audit.ingest import records as r
from tests.factories import RegistrySourceFactory

BUCKET = "acme-cloudtrail"


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    clear_limiters()
    yield
    clear_limiters()


@pytest.fixture(autouse=True)
def _ninety_day_first_pass(settings: Any) -> None:
    """These tests read trail files a few days old in the first S3 pass: the opt-out setting (the
    default reads only yesterday on, the backfill the rest; tests/audit/evidence covers that)."""
    settings.AUDIT_S3_INITIAL_DAYS = 90


@pytest.fixture
def trail_source(db: None) -> RegistrySource:
    return RegistrySourceFactory(name="prod", region=r.REGION, account_id=r.ACCOUNT, cloudtrail_bucket=BUCKET)


class Trail:
    """The trail's bucket in moto: put log files the way CloudTrail delivers them."""

    def __init__(self, bucket: str = BUCKET) -> None:
        self.bucket = bucket
        self.s3 = boto3.client("s3", region_name=r.REGION)
        self.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": r.REGION})

    def put(self, key: str, body: bytes) -> str:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        return key

    def deliver(
        self, records: list[dict[str, Any]], when: dt.datetime, unique: str = "0Sfy6m9f6iBzmoPF", **kw: Any
    ) -> str:
        return self.put(r.log_key(when, unique, **kw), r.gz(records))


@pytest.fixture
def trail(aws: None) -> Trail:
    return Trail()


class FakeClock:
    """A monotonic clock whose ``sleep`` advances time instead of waiting."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


def days_ago(days: float, *, hour: int = 10, minute: int = 5) -> dt.datetime:
    base = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    return base.replace(hour=hour, minute=minute, second=0, microsecond=0)
