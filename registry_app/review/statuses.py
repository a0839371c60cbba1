"""The one display status (``review.status``) of many versions at once: the group page's list.

Two queries whatever the number of versions: the stored review state of the pending ones
(``ReviewState``: outcome, missing roles, blocking gates) and the decision pushes with their
decisions and deciders. Reads only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from registry_app.models import ModelPackage, PushOutbox, ReviewState
from registry_app.review.status import VersionStatus, status_of_package

__all__ = ["version_statuses"]


def version_statuses(packages: Sequence[ModelPackage]) -> dict[int, VersionStatus]:
    """``{package id: VersionStatus}`` for ``packages`` (2 queries; none when empty)."""
    ids = [p.pk for p in packages]
    if not ids:
        return {}
    rows = {
        row["package_id"]: SimpleNamespace(**row)
        for row in ReviewState.objects.filter(package_id__in=ids).values(
            "package_id", "outcome", "missing_roles", "blocked_by", "push_state"
        )
    }
    pushes: dict[int, list[Any]] = defaultdict(list)
    for push in (
        PushOutbox.objects.filter(package_id__in=ids, kind=PushOutbox.Kind.DECISION)
        .exclude(target_status="")
        .select_related("decision__decided_by")
    ):
        pushes[push.package_id].append(push)
    return {p.pk: status_of_package(p, pushes[p.pk], review=rows.get(p.pk)) for p in packages}
