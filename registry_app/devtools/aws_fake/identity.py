"""Who is calling: the caller's identity as AWS would record it, from the request's access key.

moto stamps every model package ``CreatedBy`` / ``LastModifiedBy`` with the same made-up Studio user
profile (``fake-user-profile-name``). AWS records the calling principal instead: for IAM credentials a
``UserContext`` with ``IamIdentity {Arn, PrincipalId, SourceIdentity}`` (botocore ``UserContext`` /
``IamIdentity``; ``SourceIdentity`` is present only for role sessions that set one). This module
resolves the caller the same way moto's ``GetCallerIdentity`` does, so both agree.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from moto.sts.models import AssumedRole, sts_backends
from moto.utilities.utils import get_partition

# The attribute the fake adds to moto's AssumedRole objects (AssumeRole's SourceIdentity).
SOURCE_IDENTITY_ATTR = "aws_fake_source_identity"


def caller_session(response: Any) -> AssumedRole | None:
    """The moto role session whose temporary access key signed this request, if any."""
    key = response.get_access_key()
    partition = get_partition(response.region)
    backend = sts_backends[response.current_account][partition]
    return backend.get_assumed_role_from_access_key(key)


def caller_arn(response: Any) -> str:
    """The caller's ARN exactly as moto's GetCallerIdentity reports it."""
    partition = get_partition(response.region)
    backend = sts_backends[response.current_account][partition]
    _user_id, arn, _account = backend.get_caller_identity(response.get_access_key(), response.region)
    return arn


def caller_user_context(response: Any) -> dict[str, Any]:
    """``{"IamIdentity": {...}}`` for the caller (AWS's CreatedBy / LastModifiedBy for IAM callers)."""
    partition = get_partition(response.region)
    backend = sts_backends[response.current_account][partition]
    user_id, arn, _account = backend.get_caller_identity(response.get_access_key(), response.region)
    identity: dict[str, Any] = {"Arn": arn, "PrincipalId": user_id}
    session = backend.get_assumed_role_from_access_key(response.get_access_key())
    source_identity = getattr(session, SOURCE_IDENTITY_ATTR, None) if session is not None else None
    if source_identity:
        identity["SourceIdentity"] = source_identity
    return {"IamIdentity": identity}


def iam_user_context(arn: str, *, source_identity: str = "", principal_id: str = "") -> dict[str, Any]:
    """A ``UserContext`` for a registrant, for ``backdate_package(created_by=...)``.

    ``arn`` is e.g. ``arn:aws:sts::111122223333:assumed-role/DataScientist/alice``; the principal id
    defaults to a stable ``AROA...:<session>`` shape like the ones STS issues.
    """
    session = arn.rsplit("/", 1)[-1]
    identity: dict[str, Any] = {"Arn": arn, "PrincipalId": principal_id or f"AROAFAKEDEMOROLEID:{session}"}
    if source_identity:
        identity["SourceIdentity"] = source_identity
    return {"IamIdentity": identity}


def now_ms() -> dt.datetime:
    """Naive-UTC now truncated to milliseconds: moto stores naive UTC, AWS returns millisecond times."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond - now.microsecond % 1000)


def to_naive_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)
