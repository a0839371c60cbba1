"""Who made a CloudTrail call: a human-readable actor for a record's ``userIdentity``. Pure.

``sessionContext.sourceIdentity`` wins (Studio user profiles, the dashboard's own pushes), then the
IAM Identity Center user (``AWSReservedSSO_*`` role sessions, ``IdentityCenterUser``), the IAM user
name, the assumed-role session name (qualified by the role when the session name is a generic one
such as ``SageMaker``), and service principals (``invokedBy``). ``Actor.candidates`` are the names
to match against dashboard usernames.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from registry_app.audit.event_keys import MAX_NAME, MAX_RESOURCE, as_str, ci_get, lc

__all__ = ["Actor", "actor_of", "keyed_actor"]

# Session names that say nothing about who acted: qualify them with the role name.
_GENERIC_SESSION = re.compile(
    r"^(sagemaker|sagemaker-pipelines?|botocore-session-\d+|aws-sdk-\w+-\d+|aws-go-sdk-\d+|\d+|i-[0-9a-f]+"
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,})$",
    re.IGNORECASE,
)
SSO_ROLE_PREFIX = "AWSReservedSSO_"


@dataclass(frozen=True)
class Actor:
    type: str = ""
    arn: str = ""
    name: str = ""
    # Lower-cased names to match against dashboard usernames, best first.
    candidates: tuple[str, ...] = ()


def _assumed_role_parts(identity: dict[str, Any], context: dict[str, Any]) -> tuple[str, str]:
    """(role name, session name) of an assumed-role identity (both maps key-lowered)."""
    arn = as_str(identity.get("arn"))
    role = session = ""
    if ":assumed-role/" in arn:
        tail = arn.split(":assumed-role/", 1)[1]
        role, _, session = tail.partition("/")
    role = as_str(lc(context.get("sessionIssuer")).get("userName")) or role
    if not session:
        principal = as_str(identity.get("principalId"))
        if ":" in principal:
            session = principal.split(":", 1)[1]
    return role, session


def _unique_lower(*names: str) -> tuple[str, ...]:
    out: list[str] = []
    for name in names:
        lowered = name.strip().lower()
        if lowered and lowered not in out:
            out.append(lowered)
    return tuple(out)


def actor_of(identity: Any, record: Any = None) -> Actor:
    """A human-readable actor for a ``userIdentity`` element (see the module docstring)."""
    if not isinstance(identity, dict):
        return Actor()
    return keyed_actor(lc(identity), record)


def keyed_actor(identity: dict[str, Any], record: Any) -> Actor:
    """``actor_of`` for an identity whose keys ``lc`` has already re-spelt."""
    kind = as_str(identity.get("type"))
    arn = as_str(identity.get("arn"))
    context = lc(identity.get("sessionContext"))
    source_identity = as_str(context.get("sourceIdentity"))
    user_name = as_str(identity.get("userName"))
    invoked_by = as_str(identity.get("invokedBy"))
    on_behalf = lc(identity.get("onBehalfOf"))
    name = ""
    candidates: tuple[str, ...] = ()

    if kind == "AssumedRole" or ":assumed-role/" in arn:
        role, session = _assumed_role_parts(identity, context)
        meaningful = role.startswith(SSO_ROLE_PREFIX) or not _GENERIC_SESSION.match(session or "x")
        if source_identity:
            name = source_identity
        elif meaningful:
            name = session or role
        else:
            name = f"{role}/{session}" if role else session
        # A generic session name ("SageMaker") must not match a dashboard login.
        candidates = _unique_lower(source_identity or (session if meaningful else ""))
    elif kind == "IdentityCenterUser" or on_behalf:
        extra = lc(ci_get(record, "additionalEventData"))
        sso_name = user_name or as_str(on_behalf.get("userName")) or as_str(extra.get("userName"))
        user_id = as_str(on_behalf.get("userId"))
        name = source_identity or sso_name or (f"idc:{user_id}" if user_id else "identity-center-user")
        candidates = _unique_lower(source_identity) if source_identity else _unique_lower(sso_name)
    elif kind == "IAMUser":
        name = user_name or arn.rsplit("/", 1)[-1]
        candidates = _unique_lower(source_identity) if source_identity else _unique_lower(name)
    elif kind == "Root":
        name = "root"
    elif kind == "AWSService":
        name = invoked_by or as_str(identity.get("principalId")) or "aws-service"
    elif kind == "FederatedUser":
        name = arn.rsplit("/", 1)[-1] if ":federated-user/" in arn else as_str(identity.get("principalId"))
        candidates = _unique_lower(name)
    else:  # SAMLUser, WebIdentityUser, Directory, AWSAccount, Unknown, future types
        name = source_identity or user_name or as_str(identity.get("principalId")) or arn or invoked_by
        candidates = _unique_lower(source_identity or user_name)
    if not name and invoked_by:
        name = invoked_by
    return Actor(type=kind[:32], arn=arn[:MAX_RESOURCE], name=name[:MAX_NAME], candidates=candidates)
