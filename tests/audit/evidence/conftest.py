"""Fixtures for the evidence tests: a source whose trail delivers signed digests (moto S3 + the AWS
fake's ListPublicKeys), times relative to now (the forward pass reads from yesterday on)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from registry_app.audit.ingest import IngestResult, ingest_source
from registry_app.aws.cloudtrail import clear_limiters
from registry_app.models import RegistrySource
from tests.audit.evidence.signed_trail import SignedTrail
from tests.audit.ingest import records as r
from tests.factories import RegistrySourceFactory

BUCKET = "acme-signed-trail"


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    clear_limiters()
    yield
    clear_limiters()


@pytest.fixture
def source(db: None) -> RegistrySource:
    return RegistrySourceFactory(name="prod", region=r.REGION, account_id=r.ACCOUNT, cloudtrail_bucket=BUCKET)


@pytest.fixture
def signed(aws: None) -> SignedTrail:
    boto3.client("s3", region_name=r.REGION).create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": r.REGION}
    )
    trail = SignedTrail(BUCKET)
    trail.register()
    return trail


def hours_ago(hours: float) -> dt.datetime:
    """A delivery minute ``hours`` before now (whole minutes, as in a log file's name)."""
    return (dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)).replace(second=0, microsecond=0)


def ingest(source: RegistrySource, **kw: Any) -> IngestResult:
    source.refresh_from_db()
    return ingest_source(source, lookup=False, **kw)
