"""Who gets which notification: role holders, signers and watchers, minus those who opted out.

Reads only; the registrant of a package is left out where separation of duties stops them signing it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db.models import Q

from registry_app.models import GroupWatcher, ModelPackage, NotificationPreference, SignOff
from registry_app.permissions import registrant_user_ids

if TYPE_CHECKING:
    from registry_app.review.policy import PolicySpec


def wanting(users: Iterable[Any], kind: str) -> list[Any]:
    """Active users with an email who have not opted out of ``kind``; de-duplicated, stable order."""
    seen: set[int] = set()
    candidates = []
    for user in users:
        if user.pk in seen or not user.is_active or not (user.email or "").strip():
            continue
        seen.add(user.pk)
        candidates.append(user)
    opted_out = {
        pref.user_id
        for pref in NotificationPreference.objects.filter(user__in=[u.pk for u in candidates])
        if not pref.wants(kind)
    }
    return [u for u in candidates if u.pk not in opted_out]


def role_holders(roles: Iterable[str]) -> list[Any]:
    """Users in the Django auth groups named like the roles."""
    names = list(roles)
    if not names:
        return []
    return list(get_user_model().objects.filter(groups__name__in=names, is_active=True).distinct().order_by("pk"))


def signers_and_watchers(package: ModelPackage) -> list[Any]:
    user_model = get_user_model()
    signer_ids = SignOff.objects.filter(package=package).values("user_id")
    watcher_ids = GroupWatcher.objects.filter(group_id=package.group_id).values("user_id")
    return list(user_model.objects.filter(Q(pk__in=signer_ids) | Q(pk__in=watcher_ids)).distinct().order_by("pk"))


def reminder_recipients(package: ModelPackage, policy: PolicySpec) -> list[Any]:
    """Holders of a required role still missing approvals who hold no current sign-off here.

    The registrant is left out: separation of duties stops them from signing.
    """
    current = SignOff.objects.filter(package=package, stale_at__isnull=True)
    signed_users = set(current.values_list("user_id", flat=True)) | set(registrant_user_ids(package))
    approvals: dict[str, int] = {}
    for role in current.filter(decision=SignOff.Decision.APPROVE).values_list("role", flat=True):
        approvals[role] = approvals.get(role, 0) + 1
    open_roles = [role for role, needed in policy.required_roles.items() if approvals.get(role, 0) < needed]
    return [u for u in role_holders(open_roles) if u.pk not in signed_users]
