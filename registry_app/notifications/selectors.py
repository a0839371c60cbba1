"""Reads for notification pages: which groups a person watches or could watch."""

from __future__ import annotations

from typing import Any

from registry_app.mirror.lookups import visible_groups
from registry_app.models import GroupWatcher, ModelPackageGroup

__all__ = ["WATCHABLE_SHOWN", "is_watching", "watchable_groups"]

WATCHABLE_SHOWN = 500


def is_watching(user: Any, group: ModelPackageGroup) -> bool:
    return bool(user.pk) and GroupWatcher.objects.filter(user_id=user.pk, group=group).exists()


def watchable_groups(user: Any) -> list[ModelPackageGroup]:
    """Live groups ``user`` does not watch yet, by name (at most ``WATCHABLE_SHOWN``)."""
    groups = visible_groups(user).filter(deleted_at__isnull=True).exclude(watchers__user=user)
    return list(groups.order_by("name", "source__name")[:WATCHABLE_SHOWN])
