"""Who may do what. Used by views (to show or hide actions) and by services (to refuse them).

Roles are Django auth groups named like the policy roles (``ml-lead``, ``fairness``, ``compliance``,
and ``viewer`` for read-only access); a role added in the admin works without code changes as
soon as a policy requires it. These functions decide from the values they are given; the services
call them again under the package row lock, with the row as it is then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from registry_app.models.registry import ApprovalStatus
from registry_app.models.signoffs import PushOutbox

if TYPE_CHECKING:
    from registry_app.models import ModelPackage, ModelPackageGroup

__all__ = [
    "COMPLIANCE_ROLE",
    "RETRYABLE_PUSH_STATES",
    "SIGNOFF_ROLES",
    "VIEWER_ROLE",
    "can_archive",
    "can_retry_push",
    "can_revoke",
    "is_active_user",
    "principal_names",
    "registrant_user_ids",
    "user_roles",
]

SIGNOFF_ROLES = ("ml-lead", "fairness", "compliance")
VIEWER_ROLE = "viewer"
COMPLIANCE_ROLE = "compliance"
RETRYABLE_PUSH_STATES = PushOutbox.RETRYABLE_STATES

_CACHE_ATTR = "_governance_roles"


def is_active_user(user: Any) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and getattr(user, "is_active", False))


def user_roles(user: Any) -> set[str]:
    """Names of the user's auth groups; empty for anonymous or inactive users.

    Cached on the user object, which Django builds once per request: one query per request.
    Returns a copy, so callers may change it freely.
    """
    if not is_active_user(user):
        return set()
    cached: frozenset[str] | None = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        setattr(user, _CACHE_ATTR, cached)
    return set(cached)


def principal_names(user_context: Any) -> list[str]:
    """Person names in a SageMaker ``UserContext`` (``CreatedBy`` / ``LastModifiedBy``), best first.

    ``IamIdentity.SourceIdentity`` (the human behind an assumed role), the session name at the
    end of an assumed-role ARN, an IAM user's or federated user's name, the Studio
    ``UserProfileName``. Duplicates (case-insensitive) are dropped.
    """
    if not isinstance(user_context, dict):
        return []
    found: list[str] = []
    iam = user_context.get("IamIdentity")
    if isinstance(iam, dict):
        found.append(str(iam.get("SourceIdentity") or ""))
        arn = str(iam.get("Arn") or "")
        _, _, resource = arn.partition(":sts::") if ":sts::" in arn else arn.partition(":iam::")
        resource = resource.partition(":")[2]  # drop the account id
        kind, _, path = resource.partition("/")
        if kind in ("assumed-role", "user", "federated-user") and path:
            found.append(path.rsplit("/", 1)[-1])
    found.append(str(user_context.get("UserProfileName") or ""))
    names: list[str] = []
    for name in (n.strip() for n in found):
        if name and name.casefold() not in {n.casefold() for n in names}:
            names.append(name)
    return names


def registrant_user_ids(package: ModelPackage) -> list[int]:
    """Ids of the Django users (username matched case-insensitively) who registered ``package``.

    One query, none when ``CreatedBy`` names nobody.
    """
    from django.contrib.auth import get_user_model
    from django.db.models import Q

    names = principal_names(package.created_by)
    if not names:
        return []
    model = get_user_model()
    field = model.USERNAME_FIELD
    match = Q()
    for name in names:
        match |= Q(**{f"{field}__iexact": name})
    return list(model.objects.filter(match).order_by("pk").values_list("pk", flat=True))


def can_revoke(user: Any, package: ModelPackage) -> bool:
    """Compliance may move an Approved, not deleted package to Rejected."""
    return (
        COMPLIANCE_ROLE in user_roles(user)
        and package.approval_status == ApprovalStatus.APPROVED
        and package.deleted_at is None
    )


def can_archive(user: Any, group: ModelPackageGroup) -> bool:
    """Compliance may archive a group that still exists in the registry."""
    return COMPLIANCE_ROLE in user_roles(user) and group.deleted_at is None


def can_retry_push(user: Any, push: PushOutbox) -> bool:
    """Staff may retry a push that failed or conflicted with a change made elsewhere."""
    return is_active_user(user) and bool(getattr(user, "is_staff", False)) and push.state in RETRYABLE_PUSH_STATES
