"""The profile page: which notification kinds a user wants, and the groups they watch."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from registry_app.models import GroupWatcher, ModelPackageGroup, NotificationKind, NotificationPreference

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


@dataclass(frozen=True)
class KindChoice:
    value: str
    label: str
    wanted: bool


@dataclass(frozen=True)
class ProfileOverview:
    kinds: list[KindChoice]
    watched: list[ModelPackageGroup]
    roles: list[str]
    has_email: bool


def profile_overview(user: AbstractBaseUser) -> ProfileOverview:
    """What the profile page shows: each kind with whether it is wanted, watched groups, roles."""
    pref = NotificationPreference.objects.filter(user=user).first()
    kinds = [
        KindChoice(value, str(label), pref is None or pref.wants(value)) for value, label in NotificationKind.choices
    ]
    watched = list(
        ModelPackageGroup.objects.filter(watchers__user=user).select_related("source").order_by("name", "source__name")
    )
    roles = sorted(user.groups.values_list("name", flat=True)) if hasattr(user, "groups") else []
    return ProfileOverview(kinds=kinds, watched=watched, roles=roles, has_email=bool((user.email or "").strip()))


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
