"""STS ``AssumeRole`` checks that moto 5.2.5 leaves out.

* ``RoleSessionName`` and ``SourceIdentity``: 2-64 characters of ``[\\w+=,.@-]`` (botocore shapes
  ``roleSessionNameType`` / ``sourceIdentityType``; the member docs spell the class out as upper- and
  lower-case alphanumerics plus ``_+=,.@-``, so ``\\w`` is ASCII here). botocore checks only the minimum
  length on the client; moto checks only the maximum of RoleSessionName. A ``SourceIdentity``
  starting with ``aws:`` is reserved (SourceIdentity member doc).
* ``SourceIdentity`` requires ``sts:SetSourceIdentity`` in the role's trust policy (IAM User Guide,
  "Monitor and control actions taken with assumed roles"); otherwise ``AccessDenied`` (HTTP 403).
  moto accepts it for any role, even one that does not exist, and never returns it.
* Once a session has a source identity it cannot be changed: a chained AssumeRole inherits it, and
  asking for a different one is refused (same page).
"""

from __future__ import annotations

import fnmatch
import json
import re
import uuid
from typing import Any
from urllib.parse import unquote
from xml.sax.saxutils import escape

from moto.core.responses import ActionResult
from moto.iam.models import iam_backends
from moto.sts.exceptions import STSValidationError
from moto.sts.responses import TokenResponse
from moto.utilities.utils import get_partition

from registry_app.devtools.aws_fake._patching import wraps_original
from registry_app.devtools.aws_fake.identity import SOURCE_IDENTITY_ATTR, caller_arn, caller_session

NAME_PATTERN = r"[\w+=,.@-]*"
_NAME_RE = re.compile(NAME_PATTERN, re.ASCII)
NAME_MIN, NAME_MAX = 2, 64
SET_SOURCE_IDENTITY = "sts:SetSourceIdentity"
_STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"


def name_errors(value: str | None, member: str) -> list[str]:
    """AWS's wording for each constraint a RoleSessionName / SourceIdentity value breaks."""
    if value is None:
        return []
    errors = []
    prefix = f"Value '{value}' at '{member}' failed to satisfy constraint: Member must"
    if len(value) < NAME_MIN:
        errors.append(f"{prefix} have length greater than or equal to {NAME_MIN}")
    if len(value) > NAME_MAX:
        errors.append(f"{prefix} have length less than or equal to {NAME_MAX}")
    if not _NAME_RE.fullmatch(value):
        errors.append(f"{prefix} satisfy regular expression pattern: {NAME_PATTERN}")
    return errors


# --------------------------------------------------------------------------------------------- trust policy


def _listed(entry: Any) -> list[str]:
    if entry is None:
        return []
    return [str(e) for e in entry] if isinstance(entry, list) else [str(entry)]


def _action_matches(statement: dict[str, Any], action: str) -> bool:
    """IAM action matching: case-insensitive, with ``*`` / ``?`` wildcards; NotAction inverts."""

    def hit(patterns: list[str]) -> bool:
        return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in patterns)

    if "NotAction" in statement:
        return not hit(_listed(statement["NotAction"]))
    return hit(_listed(statement.get("Action")))


def _conditions_hold(conditions: Any, source_identity: str) -> bool:
    """Evaluates the string operators on ``sts:SourceIdentity``; other condition keys are not modelled
    (treated as satisfied, see docs/aws-fake.md)."""
    for operator, block in (conditions or {}).items():
        for key, expected in (block or {}).items():
            if key.lower() != "sts:sourceidentity":
                continue
            values = _listed(expected)
            base = operator.removesuffix("IfExists")
            if base == "StringEquals":
                ok = source_identity in values
            elif base == "StringEqualsIgnoreCase":
                ok = source_identity.lower() in [v.lower() for v in values]
            elif base == "StringLike":
                ok = any(fnmatch.fnmatchcase(source_identity, v) for v in values)
            elif base == "StringNotEquals":
                ok = source_identity not in values
            elif base == "StringNotLike":
                ok = not any(fnmatch.fnmatchcase(source_identity, v) for v in values)
            else:
                continue
            if not ok:
                return False
    return True


def trust_policy_allows(document: Any, action: str, source_identity: str) -> bool:
    """Whether a role trust policy allows ``action``: some Allow statement matches and no Deny does."""
    if isinstance(document, str):
        try:
            document = json.loads(unquote(document) if document.lstrip().startswith("%") else document)
        except ValueError:
            return False
    statements = (document or {}).get("Statement") if isinstance(document, dict) else None
    if isinstance(statements, dict):
        statements = [statements]
    allowed = False
    for statement in statements or []:
        if not isinstance(statement, dict) or not _action_matches(statement, action):
            continue
        if not _conditions_hold(statement.get("Condition"), source_identity):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def role_trust_policy(role_arn: str, region: str) -> Any:
    """The AssumeRolePolicyDocument of a role in moto's IAM, or None when the role does not exist."""
    match = re.match(r"arn:[^:]+:iam::(\d{12}):role/", role_arn or "")
    if not match:
        return None
    backend = iam_backends[match.group(1)][get_partition(region)]
    for role in backend.get_roles():
        if role.arn == role_arn:
            return role.assume_role_policy_document
    return None


# --------------------------------------------------------------------------------------------- responses


def access_denied(caller: str, action: str, resource: str) -> tuple[str, dict[str, Any]]:
    """STS's AccessDenied (query protocol XML, HTTP 403, Type Sender), as AWS sends it."""
    message = f"User: {caller} is not authorized to perform: {action} on resource: {resource}"
    body = (
        f'<ErrorResponse xmlns="{_STS_NAMESPACE}">'
        f"<Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{escape(message)}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )
    return body, {"status": 403, "Content-Type": "text/xml"}


def install() -> None:
    @wraps_original(TokenResponse, "assume_role")
    def assume_role(moto_assume: Any, self: TokenResponse) -> Any:
        """AssumeRole with AWS's name checks and source-identity rules."""
        session_name = self._get_param("RoleSessionName")
        source_identity = self._get_param("SourceIdentity")
        role_arn = self._get_param("RoleArn")
        errors = name_errors(session_name, "roleSessionName") + name_errors(source_identity, "sourceIdentity")
        if errors:
            plural = "s" if len(errors) > 1 else ""
            raise STSValidationError(f"{len(errors)} validation error{plural} detected: " + "; ".join(errors))
        if source_identity is not None and source_identity.lower().startswith("aws:"):
            raise STSValidationError("SourceIdentity cannot begin with the reserved prefix 'aws:'")
        caller = caller_session(self)
        inherited = getattr(caller, SOURCE_IDENTITY_ATTR, None) if caller is not None else None
        if source_identity is not None:
            # A source identity, once set, cannot change along a role chain.
            changed = inherited is not None and source_identity != inherited
            policy = role_trust_policy(role_arn, self.region)
            if changed or not trust_policy_allows(policy, SET_SOURCE_IDENTITY, source_identity):
                return access_denied(caller_arn(self), SET_SOURCE_IDENTITY, role_arn)
        result = moto_assume(self)
        effective = source_identity if source_identity is not None else inherited
        if effective and isinstance(result, ActionResult) and isinstance(result.result, dict):
            session = result.result["Credentials"]
            setattr(session, SOURCE_IDENTITY_ATTR, effective)
            result.result["SourceIdentity"] = effective  # AssumeRoleResponse.SourceIdentity
        return result
