"""The one way to find a mirrored group or package from what a URL names.

Every view and service that turns ``group_name`` / ``version`` / ``?source=`` into a row calls
these, so the choice among namesakes is made once: a live group before a deleted one, then by
source name. The permission filter is applied here too: reading the mirror needs an active,
signed-in account (``permissions.is_active_user``); anyone else finds nothing.
"""

from __future__ import annotations

from typing import Any

from django.db.models import F, QuerySet

from registry_app.models import ModelPackage, ModelPackageGroup
from registry_app.permissions import is_active_user

__all__ = ["find_group", "find_group_and_namesakes", "find_package", "visible_groups"]


def visible_groups(user: Any) -> QuerySet[ModelPackageGroup]:
    """Groups ``user`` may read: all of them for an active account, none otherwise."""
    groups = ModelPackageGroup.objects.select_related("source")
    return groups if is_active_user(user) else groups.none()


def find_group_and_namesakes(
    user: Any, *, name: str, source_name: str | None = None
) -> tuple[ModelPackageGroup | None, list[ModelPackageGroup]]:
    """The group called ``name`` (in ``source_name`` if given) and its namesakes in other sources (1 query)."""
    candidates = list(
        visible_groups(user).filter(name=name).order_by(F("deleted_at").asc(nulls_first=True), "source__name", "pk")
    )
    if source_name:
        chosen = next((g for g in candidates if g.source.name == source_name), None)
    else:
        chosen = candidates[0] if candidates else None
    return chosen, [g for g in candidates if g is not chosen]


def find_group(user: Any, *, name: str, source_name: str | None = None) -> ModelPackageGroup | None:
    return find_group_and_namesakes(user, name=name, source_name=source_name)[0]


def find_package(user: Any, *, group_name: str, version: int, source_name: str | None = None) -> ModelPackage | None:
    """The package ``group_name``/``version`` (with group, source and card selected; 1 query)."""
    if not is_active_user(user):
        return None
    packages = ModelPackage.objects.filter(group__name=group_name, version=version).select_related(
        "group__source", "source", "model_card"
    )
    if source_name:
        packages = packages.filter(group__source__name=source_name)
    return packages.order_by(F("group__deleted_at").asc(nulls_first=True), "group__source__name", "pk").first()
