"""Strict parsing of the API's path and query values: a value, or a 400 naming the field.

Nothing malformed reaches a query (a NUL character alone is a 500 on PostgreSQL), and nothing is
guessed at: a pipeline with a typo learns what to fix.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from registry_app.api.errors import ApiError
from registry_app.gate.registry import GroupKey
from registry_app.models.registry import ApprovalStatus

__all__ = ["arn", "group_cursor", "group_name", "limit", "package_cursor", "since", "source", "status", "version"]

# SageMaker's ModelPackageGroupName pattern.
_GROUP = re.compile(r"[a-zA-Z0-9](?:-*[a-zA-Z0-9]){0,62}")
_SOURCE = re.compile(r"[-a-zA-Z0-9_]{1,64}")  # RegistrySource.name is a 64-character slug
_ARN = re.compile(
    r"arn:aws[a-z-]{0,20}:sagemaker:[a-z0-9-]{1,32}:\d{12}:model-package/"
    r"[a-zA-Z0-9](?:-*[a-zA-Z0-9]){0,62}/\d{1,9}",
    re.IGNORECASE,
)
_VERSION = re.compile(r"[1-9]\d{0,8}")
_STATUSES = {
    "approved": ApprovalStatus.APPROVED,
    "rejected": ApprovalStatus.REJECTED,
    "pending": ApprovalStatus.PENDING,
    "pendingmanualapproval": ApprovalStatus.PENDING,
}
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_MIN_YEAR, _MAX_YEAR = 1900, 9000


def _bad(field: str, message: str) -> ApiError:
    return ApiError(400, "invalid_parameter", f"{field}: {message}")


def group_name(value: str) -> str:
    if not _GROUP.fullmatch(value or ""):
        raise _bad("group", "a model package group name: 1-63 letters, digits or '-', starting with a letter or digit")
    return value


def source(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not _SOURCE.fullmatch(value):
        raise _bad("source", "a registry source name: 1-64 letters, digits, '-' or '_'")
    return value


def version(value: str) -> int:
    if not _VERSION.fullmatch(value or ""):
        raise _bad("version", "a model package version: a whole number from 1")
    return int(value)


def arn(value: str | None) -> str:
    if not value:
        raise _bad("arn", "required: a model package ARN")
    if len(value) > 2048 or not _ARN.fullmatch(value):
        raise _bad("arn", "a versioned model package ARN: arn:aws:sagemaker:REGION:ACCOUNT:model-package/GROUP/VERSION")
    return value


def status(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    found = _STATUSES.get(value.casefold()) if len(value) < 64 else None
    if found is None:
        raise _bad("status", "one of Approved, Rejected, PendingManualApproval (or pending)")
    return str(found)


def since(value: str | None) -> dt.datetime | None:
    """An ISO-8601 date or date-time; without an offset it is UTC."""
    if value is None or value == "":
        return None
    message = "an ISO-8601 date or date-time, e.g. 2025-03-01 or 2025-03-01T12:00:00Z"
    if len(value) > 64:
        raise _bad("since", message)
    try:
        parsed = parse_datetime(value)
        if parsed is None:
            day = parse_date(value)
            parsed = dt.datetime(day.year, day.month, day.day) if day is not None else None
        if parsed is None or not _MIN_YEAR <= parsed.year <= _MAX_YEAR:
            raise ValueError(value)
        if timezone.is_naive(parsed):
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.astimezone(dt.UTC)
    except (ValueError, OverflowError, TypeError):
        raise _bad("since", message) from None


def limit(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_LIMIT
    if not re.fullmatch(r"\d{1,4}", value) or not 1 <= int(value) <= MAX_LIMIT:
        raise _bad("limit", f"a whole number from 1 to {MAX_LIMIT}")
    return int(value)


# --------------------------------------------------------------------------------------------- cursors


def _encode(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(value: str) -> dict[str, Any]:
    if len(value) > 512 or not re.fullmatch(r"[A-Za-z0-9_-]+", value):
        raise ValueError(value)
    data = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    if not isinstance(data, dict):
        raise ValueError(value)
    return data


def group_cursor(value: str | None) -> GroupKey | None:
    if not value:
        return None
    try:
        data = _decode(value)
        name, pk = data["n"], data["i"]
        if not isinstance(name, str) or not _GROUP.fullmatch(name) or type(pk) is not int or not 0 < pk < 2**62:
            raise ValueError(value)
    except (ValueError, KeyError, binascii.Error, UnicodeDecodeError):
        raise _bad("cursor", "use the next_cursor of the previous page") from None
    return GroupKey(name, pk)


def encode_group_cursor(key: GroupKey | None) -> str | None:
    return _encode({"n": key.name, "i": key.pk}) if key is not None else None


def package_cursor(value: str | None) -> int | None:
    if not value:
        return None
    try:
        found = _decode(value)["v"]
        if type(found) is not int or not 0 < found < 10**9:
            raise ValueError(value)
    except (ValueError, KeyError, binascii.Error, UnicodeDecodeError):
        raise _bad("cursor", "use the next_cursor of the previous page") from None
    return int(found)


def encode_package_cursor(version: int | None) -> str | None:
    return _encode({"v": version}) if version is not None else None
