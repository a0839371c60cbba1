"""Evaluation-report fetches: only ``s3://`` URIs, through the S3 client, size-capped and time-limited.

A registry record is written by whoever can register a model, so the URI in its ModelMetrics is
untrusted. Any other scheme (or an odd spelling of this one) must be recorded as a clear fetch
error with no call and no connection made.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from registry_app.aws import sagemaker
from registry_app.aws.sagemaker import ReportFetchTimeout, UnsupportedUri, parse_s3_uri
from registry_app.mirror.execute import sync_source
from registry_app.models import EvaluationReport, RegistrySource
from tests import aws_helpers as h

REFUSED = [
    "http://ml-artifacts.s3.amazonaws.com/credit/evaluation.json",
    "https://ml-artifacts.s3.eu-west-1.amazonaws.com/credit/evaluation.json",
    "file:///etc/passwd",
    "ftp://ml-artifacts/credit/evaluation.json",
    "gopher://127.0.0.1:6379/_INFO",
    "data:application/json,{}",
    "S3://ml-artifacts/credit/evaluation.json",
    "s3a://ml-artifacts/credit/evaluation.json",
    " s3://ml-artifacts/credit/evaluation.json",
    "\ts3://ml-artifacts/credit/evaluation.json",
    "//ml-artifacts/credit/evaluation.json",
    "ml-artifacts/credit/evaluation.json",
    "s3:/ml-artifacts/credit/evaluation.json",
    "s3://ml-artifacts",
    "s3://ml-artifacts/",
    "s3://user:secret@ml-artifacts/credit/evaluation.json",
    "s3://ml-artifacts:443/credit/evaluation.json",
    "s3://169.254.169.254/latest/meta-data",
    "s3://ml..artifacts/credit/evaluation.json",
    "s3://ML-Artifacts/credit/evaluation.json",
    "s3://ml-artifacts/credit/evaluation.json\r\nX-Injected: 1",
    "",
]


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://ml-artifacts/credit/1/evaluation.json", ("ml-artifacts", "credit/1/evaluation.json")),
        ("s3://my.bucket-01/a b/c?d#e.json", ("my.bucket-01", "a b/c?d#e.json")),
        ("s3://abc//leading/slash.json", ("abc", "/leading/slash.json")),
    ],
)
def test_s3_uris_are_split_into_bucket_and_key(uri: str, expected: tuple[str, str]) -> None:
    assert parse_s3_uri(uri) == expected


@pytest.mark.parametrize("uri", REFUSED)
def test_anything_else_is_refused_before_any_call(uri: str) -> None:
    with pytest.raises(UnsupportedUri) as caught:
        parse_s3_uri(uri)
    assert "nothing fetched" in str(caught.value) or "only s3://bucket/key URIs are fetched" in str(caught.value)


@pytest.mark.parametrize("uri", ["http://x.example/r.json", "S3://ml-artifacts/r.json", "file:///etc/passwd"])
def test_the_message_names_the_refused_scheme(uri: str) -> None:
    with pytest.raises(UnsupportedUri, match=f"scheme '{uri.split(':')[0]}' is never fetched"):
        parse_s3_uri(uri)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every outbound connection attempt is recorded and refused (moto's in-process mock needs none)."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> None:
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", lambda self, address: refuse(address))
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield attempts


@pytest.mark.django_db
def test_the_sync_fetches_only_the_s3_report_and_records_the_others(aws: None, no_network: list[Any]) -> None:
    sm, s3 = h.clients()
    h.make_bucket(s3)
    good = h.put_json(s3, "credit/1/evaluation.json", h.BINARY_REPORT)
    h.create_group(sm, "credit-risk")
    h.create_package(sm, "credit-risk", report_uri=good)
    for uri in REFUSED[:-1]:  # SageMaker requires a non-empty S3Uri
        h.create_package(sm, "credit-risk", report_uri=uri)
    source = RegistrySource.objects.create(name="prod", region=h.REGION)

    run = sync_source(source)

    assert run.aws_calls.get("GetObject") == 1  # the s3:// report, and nothing else
    assert no_network == []
    ok = EvaluationReport.objects.get(s3_uri=good)
    assert ok.status == EvaluationReport.Status.OK
    refused = EvaluationReport.objects.exclude(s3_uri=good)
    assert refused.count() == len(REFUSED) - 1
    for report in refused:
        assert report.status == EvaluationReport.Status.FETCH_ERROR, report.s3_uri
        assert "nothing fetched" in report.error or "only s3://bucket/key URIs are fetched" in report.error
        assert report.document is None


@pytest.mark.django_db
@override_settings(REPORT_MAX_BYTES=1000)
def test_a_too_large_report_is_cut_off_with_an_error(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    read_sizes: list[int] = []
    real_read = sagemaker._read_capped

    def spy(stream: Any, limit: int, uri: str, timeout_s: float | None) -> bytes:
        body = real_read(stream, limit, uri, timeout_s)
        read_sizes.append(len(body))
        return body

    monkeypatch.setattr(sagemaker, "_read_capped", spy)
    sm, s3 = h.clients()
    h.make_bucket(s3)
    big = h.put_json(s3, "credit/1/evaluation.json", {"binary_classification_metrics": {"pad": "x" * 50_000}})
    h.create_group(sm, "credit-risk")
    h.create_package(sm, "credit-risk", report_uri=big)

    sync_source(RegistrySource.objects.create(name="prod", region=h.REGION))

    report = EvaluationReport.objects.get(s3_uri=big)
    assert report.status == EvaluationReport.Status.TOO_LARGE
    assert "exceeds the 1000-byte cap" in report.error
    assert read_sizes == [1001]  # one byte past the cap is enough to know; the rest is never read
    assert report.document is None


class _TricklingBody:
    """A body that never ends: each read returns a few bytes and a second passes on the fake clock."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.reads = 0
        self.closed = False

    def read(self, amount: int) -> bytes:
        self.reads += 1
        self.clock[0] += 1.0
        return b"{" if self.reads == 1 else b" "

    def close(self) -> None:
        self.closed = True


def test_a_trickling_transfer_is_abandoned_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(sagemaker.time, "monotonic", lambda: clock[0])
    body = _TricklingBody(clock)
    client = sagemaker.RegistryClient.__new__(sagemaker.RegistryClient)
    monkeypatch.setattr(client, "_call", lambda *a, **k: {"Body": body, "ContentLength": 10**6}, raising=False)

    with pytest.raises(ReportFetchTimeout, match=r"not fully read within 5 s"):
        client.get_object("s3://ml-artifacts/slow.json", max_bytes=10**6, timeout_s=5)
    assert body.reads == 6  # 5 seconds of reads, then the deadline check stops it
    assert body.closed


@pytest.mark.django_db
@override_settings(REPORT_FETCH_SECONDS=5)
def test_the_sync_records_a_timed_out_fetch(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(sagemaker.time, "monotonic", lambda: clock[0])
    real_call = sagemaker.RegistryClient._call

    def slow_get(self: Any, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        response = real_call(self, service, operation, **kwargs)
        if operation == "GetObject":
            response["Body"] = _TricklingBody(clock)
        return response

    monkeypatch.setattr(sagemaker.RegistryClient, "_call", slow_get)
    sm, s3 = h.clients()
    h.make_bucket(s3)
    uri = h.put_json(s3, "credit/1/evaluation.json", h.BINARY_REPORT)
    h.create_group(sm, "credit-risk")
    h.create_package(sm, "credit-risk", report_uri=uri)

    sync_source(RegistrySource.objects.create(name="prod", region=h.REGION))

    report = EvaluationReport.objects.get(s3_uri=uri)
    assert report.status == EvaluationReport.Status.FETCH_ERROR
    assert "not fully read within 5 s" in report.error
