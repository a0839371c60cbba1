"""The AWS-faithful fake over real HTTP: ``start_server`` (a thread here) and ``python -m`` (a process)."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from registry_app.devtools import aws_fake
from tests.devtools.helpers import INFERENCE, REGION

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _client(service: str, url: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=url)


def _register(url: str, group: str) -> str:
    sm = _client("sagemaker", url)
    sm.create_model_package_group(ModelPackageGroupName=group)
    answer = sm.create_model_package(
        ModelPackageGroupName=group, InferenceSpecification=INFERENCE, CustomerMetadataProperties={"owner": "risk"}
    )
    return str(answer["ModelPackageArn"])


@pytest.fixture
def server() -> Iterator[str]:
    was_installed = aws_fake.is_installed()
    running: ThreadedMotoServer = aws_fake.start_server("127.0.0.1", 0)
    host, port = running.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        running.stop()
        if not was_installed:
            aws_fake.uninstall()


def test_start_server_serves_the_layer_over_http(server: str) -> None:
    arn = _register(server, "server-thread")
    sm = _client("sagemaker", server)
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    record = sm.describe_model_package(ModelPackageName=arn)
    assert record["CustomerMetadataProperties"] == {"owner": "risk"}  # kept, not blanked
    assert record["LastModifiedTime"] >= record["CreationTime"]
    flt = {"Name": "ModelPackageGroupName", "Operator": "Equals", "Value": "server-thread"}
    answer = sm.search(Resource="ModelPackage", SearchExpression={"Filters": [flt]}, MaxResults=1)
    assert [r["ModelPackage"]["ModelPackageArn"] for r in answer["Results"]] == [arn]


def test_backdate_hooks_over_http(server: str) -> None:
    arn = _register(server, "server-backdate")
    when = dt.datetime(2025, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    registrant = aws_fake.iam_user_context("arn:aws:sts::123456789012:assumed-role/DS/dana", source_identity="dana")
    aws_fake.backdate_package(arn, when, created_by=registrant, endpoint_url=server)
    group_arn = arn.replace(":model-package/", ":model-package-group/").rsplit("/", 1)[0]
    aws_fake.backdate_group(group_arn, when - dt.timedelta(days=1), endpoint_url=server)
    sm = _client("sagemaker", server)
    record = sm.describe_model_package(ModelPackageName=arn)
    assert record["CreationTime"] == when and record["CreatedBy"] == registrant
    group = sm.describe_model_package_group(ModelPackageGroupName="server-backdate")
    assert group["CreationTime"] == when - dt.timedelta(days=1)
    with pytest.raises(urllib.error.HTTPError) as exc:
        aws_fake.backdate_package(arn.replace("/1", "/7"), when, endpoint_url=server)
    assert exc.value.code == 400


def _wait_for(url: str, proc: subprocess.Popen[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the fake exited early: {proc.communicate()[0][-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise AssertionError("the fake did not answer in time")


def test_module_runs_as_a_server_process() -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "registry_app.devtools.aws_fake", "-H", "127.0.0.1", "-p", str(port)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(url, proc)
        arn = _register(url, "server-process")
        sm = _client("sagemaker", url)
        sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"ticket": "GOV-1"})
        assert sm.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"] == {
            "owner": "risk",
            "ticket": "GOV-1",
        }
        aws_fake.backdate_package(arn, dt.datetime(2025, 1, 1, tzinfo=dt.UTC), endpoint_url=url)
        body = json.dumps({"arn": arn, "creation_time": "2025-01-01T00:00:00Z"}).encode()
        path = f"{url}{aws_fake.BACKDATE_PACKAGE_PATH}"
        with pytest.raises(urllib.error.HTTPError) as exc:  # a form content type is refused, with advice
            urllib.request.urlopen(urllib.request.Request(path, data=body, method="POST"), timeout=5)
        assert "application/json" in json.loads(exc.value.read())["error"]
        request = urllib.request.Request(path, data=body, method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert json.loads(answer.read()) == {"status": "ok"}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
