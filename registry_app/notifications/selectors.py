"""Reads for notification pages: a person's notification choices, and the groups they watch or could watch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from registry_app.mirror.lookups import visible_groups
from registry_app.models import GroupWatcher, ModelPackageGroup, NotificationKind, NotificationPreference

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

__all__ = ["WATCHABLE_SHOWN", "KindChoice", "ProfileOverview", "is_watching", "profile_overview", "watchable_groups"]

WATCHABLE_SHOWN = 500


def is_watching(user: Any, group: ModelPackageGroup) -> bool:
    return bool(user.pk) and GroupWatcher.objects.filter(user_id=user.pk, group=group).exists()


def watchable_groups(user: Any) -> list[ModelPackageGroup]:
    """Live groups ``user`` does not watch yet, by name (at most ``WATCHABLE_SHOWN``)."""
    groups = visible_groups(user).filter(deleted_at__isnull=True).exclude(watchers__user=user)
    return list(groups.order_by("name", "source__name")[:WATCHABLE_SHOWN])


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
