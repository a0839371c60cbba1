"""The per-source sync lease: one sync (or one sharded full reconciliation) of a source at a time.

The lease is two columns on ``RegistrySource`` (a random token and an expiry), taken and renewed with
conditional UPDATEs, so it works on PostgreSQL and SQLite alike and a dead worker's lease simply lapses
after ``SYNC_LOCK_SECONDS``. A sync renews it as it reports progress.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from registry_app.models import RegistrySource


def acquire_lock(source: RegistrySource) -> str | None:
    """Conditional UPDATE: succeeds for exactly one caller while the lease is free or expired."""
    token = uuid.uuid4().hex
    now = timezone.now()
    won = (
        RegistrySource.objects.filter(pk=source.pk)
        .filter(Q(sync_locked_until__isnull=True) | Q(sync_locked_until__lt=now))
        .update(
            sync_lock_token=token,
            sync_locked_until=now + timezone.timedelta(seconds=settings.SYNC_LOCK_SECONDS),
        )
    )
    return token if won else None


def renew_lock(source: RegistrySource, token: str) -> None:
    RegistrySource.objects.filter(pk=source.pk, sync_lock_token=token).update(
        sync_locked_until=timezone.now() + timezone.timedelta(seconds=settings.SYNC_LOCK_SECONDS)
    )


def hold_lock(source: RegistrySource, token: str) -> bool:
    """Renew the lease for its holder, or take it back if it lapsed and nobody else holds it.

    A shard of a full reconciliation runs under the lease its run took; a shard that waited in
    the queue longer than the lease finds another sync holding it and must not run.
    """
    now = timezone.now()
    return bool(
        RegistrySource.objects.filter(pk=source.pk)
        .filter(Q(sync_lock_token=token) | Q(sync_locked_until__isnull=True) | Q(sync_locked_until__lt=now))
        .update(
            sync_lock_token=token,
            sync_locked_until=now + timezone.timedelta(seconds=settings.SYNC_LOCK_SECONDS),
        )
    )


def release_lock(source: RegistrySource, token: str) -> None:
    RegistrySource.objects.filter(pk=source.pk, sync_lock_token=token).update(
        sync_lock_token="", sync_locked_until=None
    )
