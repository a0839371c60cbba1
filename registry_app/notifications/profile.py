"""The profile page's writes: how a user wants each notification kind, and the groups they watch.

What the page shows is ``selectors.profile_overview``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from registry_app.models import GroupWatcher, ModelPackageGroup, NotificationKind, NotificationPreference

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


def notification_preferences_set(
    user: AbstractBaseUser, *, opted_out: Iterable[str] = (), daily: Iterable[str] = ()
) -> NotificationPreference:
    """Store the kinds ``user`` does not want and those sent in the daily digest; every other kind is sent
    immediately. Unknown values are dropped; a kind both off and daily is off. One UPDATE or INSERT."""
    valid = set(NotificationKind.values)
    off = sorted({kind for kind in opted_out if kind in valid})
    digest = sorted({kind for kind in daily if kind in valid} - set(off))
    pref, _ = NotificationPreference.objects.update_or_create(user=user, defaults={"opted_out": off, "daily": digest})
    return pref


def watch_group(user: AbstractBaseUser, group: ModelPackageGroup, *, watch: bool) -> bool:
    """Start or stop watching ``group``; True when something changed. Safe to repeat (unique row)."""
    if watch:
        _, created = GroupWatcher.objects.get_or_create(user=user, group=group)
        return created
    deleted, _ = GroupWatcher.objects.filter(user=user, group=group).delete()
    return deleted > 0
