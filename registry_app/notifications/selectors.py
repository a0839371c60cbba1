"""Reads for notification pages: a person's notification choices and watched groups, and the state of the
outbox for the operations view on /sync/."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Min, Q
from django.utils import timezone

from registry_app.mirror.lookups import visible_groups
from registry_app.models import (
    GroupWatcher,
    ModelPackageGroup,
    Notification,
    NotificationKind,
    NotificationPreference,
)
from registry_app.models.signoffs import EMAIL_KINDS

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

__all__ = [
    "FAILED_SHOWN",
    "WATCHABLE_SHOWN",
    "KindChoice",
    "OutboxOverview",
    "ProfileOverview",
    "is_watching",
    "outbox_overview",
    "profile_overview",
    "watchable_groups",
]

WATCHABLE_SHOWN = 500
FAILED_SHOWN = 20


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
    mode: str  # NotificationPreference.Mode

    @property
    def wanted(self) -> bool:
        return self.mode != NotificationPreference.Mode.OFF


@dataclass(frozen=True)
class ProfileOverview:
    kinds: list[KindChoice]
    modes: list[tuple[str, str]]
    watched: list[ModelPackageGroup]
    roles: list[str]
    has_email: bool


def profile_overview(user: AbstractBaseUser) -> ProfileOverview:
    """What the profile page shows: each e-mailed kind with how it is wanted, watched groups, roles."""
    pref = NotificationPreference.objects.filter(user=user).first()
    labels = dict(NotificationKind.choices)
    kinds = [
        KindChoice(kind, str(labels[kind]), pref.mode(kind) if pref else NotificationPreference.Mode.IMMEDIATE)
        for kind in EMAIL_KINDS
    ]
    watched = list(
        ModelPackageGroup.objects.filter(watchers__user=user).select_related("source").order_by("name", "source__name")
    )
    roles = sorted(user.groups.values_list("name", flat=True)) if hasattr(user, "groups") else []
    return ProfileOverview(
        kinds=kinds,
        modes=[(str(v), str(label)) for v, label in NotificationPreference.Mode.choices],
        watched=watched,
        roles=roles,
        has_email=bool((user.email or "").strip()),
    )


@dataclass(frozen=True)
class OutboxOverview:
    """The outbox for operators: counts by state, how far behind the sender is, the rows that gave up."""

    counts: dict[str, int]
    oldest_due_seconds: float | None
    failed: list[Notification]

    @property
    def failed_count(self) -> int:
        return self.counts.get(Notification.State.FAILED, 0)

    @property
    def waiting(self) -> int:
        return self.counts.get(Notification.State.PENDING, 0) + self.counts.get(Notification.State.SENDING, 0)


def outbox_overview(now: dt.datetime | None = None, *, with_failed: bool = True) -> OutboxOverview:
    """Counts by state (with the oldest due pending row), and the latest failed rows (``with_failed``: staff
    only, since recipients and SMTP errors name people's addresses). One or two queries."""
    now = now or timezone.now()
    counts: dict[str, int] = {}
    oldest: list[dt.datetime] = []
    grouped = (
        Notification.objects.order_by()
        .values("state")
        .annotate(
            n=Count("pk"), due=Min("deliver_after", filter=Q(state=Notification.State.PENDING, deliver_after__lte=now))
        )
        .values_list("state", "n", "due")
    )
    for state, n, due in grouped:
        counts[state] = n
        if due is not None:
            oldest.append(due)
    failed = (
        list(
            Notification.objects.filter(state=Notification.State.FAILED)
            .select_related("package__group__source", "recipient", "webhook")
            .order_by("-created_at", "-pk")[:FAILED_SHOWN]
        )
        if with_failed
        else []
    )
    return OutboxOverview(
        counts={state: counts.get(state, 0) for state in Notification.State.values},
        oldest_due_seconds=max(0.0, (now - min(oldest)).total_seconds()) if oldest else None,
        failed=failed,
    )
