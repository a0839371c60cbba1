"""An AWS-faithful fake: moto 5.2.5 plus a thin layer that gives AWS's documented semantics where moto
differs on what the governance mirror depends on (docs/aws-fake.md lists each difference and its source).

How it works: ``install()`` patches moto's own classes in this process (``SageMakerResponse`` actions,
``ModelPackage`` / ``ModelPackageGroup`` records, STS ``TokenResponse.assume_role``, the training and
processing job answers), adds the ML Lineage Tracking actions moto lacks (``lineage``) and three
``/moto-api/aws-fake/...`` routes. moto dispatches both in-process ``mock_aws()`` calls and its HTTP
server's requests through those classes, so one patch serves both; no proxy, no second port.

    from registry_app.devtools import aws_fake
    aws_fake.install()                      # idempotent; then use mock_aws() as usual
    server = aws_fake.start_server("127.0.0.1", 5005)   # or a real HTTP endpoint
    aws_fake.backdate_package(arn, creation_time, created_by=aws_fake.iam_user_context(role_arn))
    server.stop()

``python -m registry_app.devtools.aws_fake -H 127.0.0.1 -p PORT`` runs the same server as a process.
"""

from __future__ import annotations

import threading

from moto.server import ThreadedMotoServer

from registry_app.devtools.aws_fake import _patching
from registry_app.devtools.aws_fake.cloudtrail_keys import ADD_PUBLIC_KEY_PATH, add_cloudtrail_public_key
from registry_app.devtools.aws_fake.hooks import (
    BACKDATE_GROUP_PATH,
    BACKDATE_PACKAGE_PATH,
    UnknownResource,
    backdate_group,
    backdate_package,
)
from registry_app.devtools.aws_fake.identity import iam_user_context
from registry_app.devtools.aws_fake.jobs import FINISH_JOB_PATH, finish_processing_job, finish_training_job

__all__ = [
    "ADD_PUBLIC_KEY_PATH",
    "BACKDATE_GROUP_PATH",
    "BACKDATE_PACKAGE_PATH",
    "FINISH_JOB_PATH",
    "UnknownResource",
    "add_cloudtrail_public_key",
    "backdate_group",
    "backdate_package",
    "finish_processing_job",
    "finish_training_job",
    "iam_user_context",
    "install",
    "is_installed",
    "start_server",
    "uninstall",
]

_LOCK = threading.Lock()
_installed = False


def install() -> None:
    """Apply the fidelity layer to moto in this process. Safe to call any number of times."""
    global _installed
    with _LOCK:
        if _installed:
            return
        from registry_app.devtools.aws_fake import cloudtrail_keys, hooks, jobs, lineage, packages, search, sts

        cloudtrail_keys.install()
        packages.install()
        jobs.install()
        lineage.install()
        search.install()
        sts.install()
        hooks.install()
        _installed = True


def uninstall() -> None:
    """Put moto back exactly as it was (for tests that show plain moto's behaviour)."""
    global _installed
    with _LOCK:
        _patching.restore_all()
        _installed = False


def is_installed() -> bool:
    return _installed


def start_server(host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False) -> ThreadedMotoServer:
    """A running moto HTTP server (in a thread of this process) with the layer installed.

    ``port=0`` picks a free port; read it back with ``server.get_host_and_port()``. Stop it with
    ``server.stop()``. The server shares moto's in-process state, so ``backdate_package`` works on it
    directly, without ``endpoint_url``.
    """
    install()
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=verbose)
    server.start()
    return server
