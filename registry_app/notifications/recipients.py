"""Who gets which notification: role holders, signers and watchers (with how each wants it), and the
chat / webhook endpoints configured for the event.

Reads only; the registrant of a package is left out where separation of duties stops them signing it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db.models import Q

from registry_app.models import GroupWatcher, ModelPackage, NotificationPreference, SignOff, WebhookEndpoint
from registry_app.permissions import registrant_user_ids

if TYPE_CHECKING:
    from registry_app.review.policy import PolicySpec


def audience(users: Iterable[Any], kind: str) -> list[tuple[Any, str]]:
    """(user, mode) for the active users with an e-mail who want ``kind``: mode ``immediate`` or ``daily``
    (``NotificationPreference.Mode``); de-duplicated, stable order. One query for the preferences."""
    seen: set[int] = set()
    candidates = []
    for user in users:
        if user.pk in seen or not user.is_active or not (user.email or "").strip():
            continue
        seen.add(user.pk)
        candidates.append(user)
    prefs = {pref.user_id: pref for pref in NotificationPreference.objects.filter(user__in=[u.pk for u in candidates])}
    chosen = []
    for user in candidates:
        pref = prefs.get(user.pk)
        mode = pref.mode(kind) if pref is not None else NotificationPreference.Mode.IMMEDIATE
        if mode != NotificationPreference.Mode.OFF:
            chosen.append((user, str(mode)))
    return chosen


def wanting(users: Iterable[Any], kind: str) -> list[Any]:
    """The users of ``audience`` (whatever their mode)."""
    return [user for user, _ in audience(users, kind)]


def webhooks_for(kind: str, package: ModelPackage, roles: Iterable[str]) -> list[WebhookEndpoint]:
    """Enabled endpoints subscribed to ``kind`` whose filters match: the package's group (by name), a tag
    of the group (key, and value if given), a role the package's policy requires. One query."""
    tags = package.group.tags if isinstance(package.group.tags, dict) else {}
    required = set(roles)
    chosen = []
    for hook in WebhookEndpoint.objects.filter(enabled=True).order_by("pk"):
        if not hook.wants(kind):
            continue
        if hook.group_name and hook.group_name != package.group.name:
            continue
        if hook.tag_key and (
            hook.tag_key not in tags or (hook.tag_value and str(tags[hook.tag_key]) != hook.tag_value)
        ):
            continue
        if hook.role and hook.role not in required:
            continue
        chosen.append(hook)
    return chosen


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
    current = SignOff.objects.filter(package=package, stale_at__isnull=True, withdrawn_at__isnull=True)
    signed_users = set(current.values_list("user_id", flat=True)) | set(registrant_user_ids(package))
    approvals: dict[str, int] = {}
    for role in current.filter(decision=SignOff.Decision.APPROVE).values_list("role", flat=True):
        approvals[role] = approvals.get(role, 0) + 1
    open_roles = [role for role, needed in policy.required_roles.items() if approvals.get(role, 0) < needed]
    return [u for u in role_holders(open_roles) if u.pk not in signed_users]
