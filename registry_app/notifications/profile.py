"""The profile page's writes: which notification kinds a user wants, and the groups they watch.

What the page shows is ``selectors.profile_overview``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from registry_app.models import GroupWatcher, ModelPackageGroup, NotificationKind, NotificationPreference

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


def notification_preferences_set(user: AbstractBaseUser, *, opted_out: Iterable[str]) -> NotificationPreference:
    """Store the kinds ``user`` does not want (unknown values are dropped). One UPDATE or INSERT."""
    valid = set(NotificationKind.values)
    wanted_out = sorted({kind for kind in opted_out if kind in valid})
    pref, _ = NotificationPreference.objects.update_or_create(user=user, defaults={"opted_out": wanted_out})
    return pref


def watch_group(user: AbstractBaseUser, group: ModelPackageGroup, *, watch: bool) -> bool:
    """Start or stop watching ``group``; True when something changed. Safe to repeat (unique row)."""
    if watch:
        _, created = GroupWatcher.objects.get_or_create(user=user, group=group)
        return created
    deleted, _ = GroupWatcher.objects.filter(user=user, group=group).delete()
    return deleted > 0
