"""Test and demo hooks that are *not* AWS APIs: backdating packages and groups, setting registrants.

AWS always stamps ``CreationTime`` with the moment of the call and ``CreatedBy`` with the caller, so a
demo seeded in one go would show every model registered in the same second by the same principal.
These hooks rewrite those fields on the fake's stored records, either in-process (``mock_aws()`` or a
``ThreadedMotoServer`` in this process) or, given ``endpoint_url``, over HTTP on the fake server's
``/moto-api/aws-fake/...`` routes (for ``scripts/demo.py``, whose seed runs in another process).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.request
from collections.abc import Mapping
from typing import Any

from moto.moto_api._internal import urls as moto_api_urls
from moto.sagemaker.models import sagemaker_backends

from registry_app.devtools.aws_fake import packages
from registry_app.devtools.aws_fake._patching import set_item
from registry_app.devtools.aws_fake.identity import to_naive_utc

BACKDATE_PACKAGE_PATH = "/moto-api/aws-fake/backdate-package"
BACKDATE_GROUP_PATH = "/moto-api/aws-fake/backdate-group"
_ARN_RE = re.compile(r"arn:[^:]+:sagemaker:([a-z0-9-]+):(\d{12}):(model-package|model-package-group)/(.+)")


class UnknownResource(LookupError):
    """The ARN names no package or group in the fake."""


def _backend_for(arn: str, kind: str) -> Any:
    match = _ARN_RE.fullmatch(arn or "")
    if not match or match.group(3) != kind:
        raise UnknownResource(f"not a SageMaker {kind} ARN: {arn!r}")
    region, account = match.group(1), match.group(2)
    return sagemaker_backends[account][region]


def _parse_time(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _post(endpoint_url: str, path: str, payload: dict[str, Any]) -> None:
    body = json.dumps(payload, default=lambda v: v.isoformat()).encode()
    request = urllib.request.Request(
        endpoint_url.rstrip("/") + path, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback fake only
        answer.read()


def backdate_package(
    arn: str,
    creation_time: dt.datetime,
    *,
    created_by: Mapping[str, Any] | None = None,
    last_modified_time: dt.datetime | None = None,
    last_modified_by: Mapping[str, Any] | None = None,
    endpoint_url: str | None = None,
) -> None:
    """Set a package's ``CreationTime`` (and optionally ``CreatedBy`` / ``LastModified*``).

    A package never updated also gets ``LastModifiedTime = creation_time`` (as at creation); an
    updated one keeps its ``LastModifiedTime`` unless ``last_modified_time`` is given. Naive datetimes
    are taken as UTC. ``created_by`` is a SageMaker ``UserContext``, e.g. ``iam_user_context(...)``.
    """
    if endpoint_url:
        payload = {
            "arn": arn,
            "creation_time": creation_time,
            "created_by": dict(created_by) if created_by is not None else None,
            "last_modified_time": last_modified_time,
            "last_modified_by": dict(last_modified_by) if last_modified_by is not None else None,
        }
        _post(endpoint_url, BACKDATE_PACKAGE_PATH, payload)
        return
    backend = _backend_for(arn, "model-package")
    with packages._LOCK:
        package = backend.model_packages.get(arn)
        if package is None:
            raise UnknownResource(f"no model package {arn}")
        created = to_naive_utc(creation_time)
        package.creation_time = created
        if last_modified_time is not None:
            package.last_modified_time = to_naive_utc(last_modified_time)
        elif not getattr(package, packages.UPDATED_ATTR, False) or package.last_modified_time is None:
            package.last_modified_time = created
        if created_by is not None:
            package.created_by = dict(created_by)
        if last_modified_by is not None:
            package.last_modified_by = dict(last_modified_by)


def backdate_group(
    arn: str,
    creation_time: dt.datetime,
    *,
    created_by: Mapping[str, Any] | None = None,
    endpoint_url: str | None = None,
) -> None:
    """Set a model package group's ``CreationTime`` (and optionally ``CreatedBy``)."""
    if endpoint_url:
        payload = {
            "arn": arn,
            "creation_time": creation_time,
            "created_by": dict(created_by) if created_by is not None else None,
        }
        _post(endpoint_url, BACKDATE_GROUP_PATH, payload)
        return
    backend = _backend_for(arn, "model-package-group")
    with packages._LOCK:
        group = next((g for g in backend.model_package_groups.values() if g.arn == arn), None)
        if group is None:
            raise UnknownResource(f"no model package group {arn}")
        group.creation_time = to_naive_utc(creation_time)
        if created_by is not None:
            group.created_by = dict(created_by)


# --------------------------------------------------------------------------------------------- HTTP routes


def _json_body(request: Any) -> dict[str, Any]:
    """The JSON body (a form content type would have the server parse, and consume, it as a form)."""
    raw = getattr(request, "data", None)
    if raw is None:
        raw = getattr(request, "body", b"")
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    if not raw:
        raise ValueError("POST a JSON object with Content-Type: application/json")
    return dict(json.loads(raw))


def _route(apply: Any) -> Any:
    def handler(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
        if getattr(request, "method", "POST") != "POST":
            return 405, {"Content-Type": "application/json"}, json.dumps({"error": "POST a JSON body"})
        try:
            body = _json_body(request)
            apply(body)
        except (UnknownResource, ValueError, KeyError, TypeError) as exc:
            return 400, {"Content-Type": "application/json"}, json.dumps({"error": str(exc)})
        return 200, {"Content-Type": "application/json"}, json.dumps({"status": "ok"})

    handler.__name__ = f"aws_fake_{apply.__name__}"  # moto's Flask app names endpoints after handlers
    return handler


def _apply_backdate_package(body: dict[str, Any]) -> None:
    backdate_package(
        body["arn"],
        _parse_time(body["creation_time"]) or dt.datetime.now(dt.UTC),
        created_by=body.get("created_by"),
        last_modified_time=_parse_time(body.get("last_modified_time")),
        last_modified_by=body.get("last_modified_by"),
    )


def _apply_backdate_group(body: dict[str, Any]) -> None:
    backdate_group(
        body["arn"],
        _parse_time(body["creation_time"]) or dt.datetime.now(dt.UTC),
        created_by=body.get("created_by"),
    )


def install() -> None:
    """Register the routes on moto's own ``/moto-api`` app (read when moto builds that app, so
    ``install()`` must run before the server answers its first ``/moto-api`` request)."""
    set_item(moto_api_urls.url_paths, "{0}" + BACKDATE_PACKAGE_PATH, _route(_apply_backdate_package))
    set_item(moto_api_urls.url_paths, "{0}" + BACKDATE_GROUP_PATH, _route(_apply_backdate_group))
