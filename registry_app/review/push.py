"""The push outbox: every intended ``UpdateModelPackage`` is a ``PushOutbox`` row, delivered once.

A row is written in the same transaction as the sign-off or decision that causes it and is
sent by ``push_task`` after commit. Delivery (``push_execute``) is safe to run any number of
times for the same row:

1. **Claim.** A conditional UPDATE moves the row from pending/failed to sending; a duplicate or
   concurrent delivery claims nothing and returns.
2. **Order.** Rows of one package go out in creation order: a row whose predecessor is still
   pending or sending is not claimed (``PushBlocked``; the task retries later).
3. **Describe** the package fresh. A status that is neither the one the review began with
   (``expected_status``) nor the push's own target was set outside the dashboard: the row
   becomes ``conflict`` and nothing is written.
4. **Already applied?** When the registry already shows the target status, description and
   flags (a worker died after UpdateModelPackage but before recording it), the row is marked
   sent without calling AWS again.
5. **Update** with the complete intended state (moto, like a careless client, blanks what is
   left out): status, description, and the full CustomerMetadataProperties from step 3 with the
   flags added. ``ClientToken`` is the row id, so AWS de-duplicates a request that botocore
   retried after a lost response.
6. **Record** the row as sent; after commit ``refresh_package_task`` describes the package and
   applies it to the mirror (the push never writes the mirror itself).

Retryable AWS errors put the row back to pending and propagate, for the Celery task's
backoff; final errors mark it failed, for staff to retry. ``pushes_resend_stuck`` (beat)
re-sends rows whose task was lost (broker or worker down at sign-off time) or whose worker
died mid-push.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from registry_app.audit import log as audit_log
from registry_app.aws.errors import AwsError, ConflictError, RetryableAwsError
from registry_app.aws.sagemaker import RegistryClient
from registry_app.aws.session import SourceConfig
from registry_app.models import PushOutbox
from registry_app.models.registry import ApprovalStatus
from registry_app.permissions import RETRYABLE_PUSH_STATES, can_retry_push
from registry_app.review.outbox import push_enqueue
from registry_app.review.push_intent import PushRefused, already_applied, conflict_detail, fit, intended
from registry_app.review.queue_state import review_state_refresh
from registry_app.review.staleness import signoffs_mark_stale
from registry_app.review.state import fingerprint_of_record

__all__ = [
    "CLAIMABLE_STATES",
    "PushBlocked",
    "push_execute",
    "push_retry",
    "pushes_resend_stuck",
    "registry_client_for",
]

log = logging.getLogger(__name__)

State = PushOutbox.State
Kind = PushOutbox.Kind

CLAIMABLE_STATES = PushOutbox.CLAIMABLE_STATES
ACTIVE_STATES = PushOutbox.ACTIVE_STATES

MAX_ERROR = 4000


class PushBlocked(Exception):
    """An earlier push for the same package is still pending or sending; try again later."""


# --------------------------------------------------------------------------------------------- helpers


def registry_client_for(push: PushOutbox) -> RegistryClient:
    """The source's client, assuming its role (if any) with the acting person as SourceIdentity,
    so CloudTrail records the human who caused the change, not just the dashboard."""
    return RegistryClient(SourceConfig.from_source(push.package.source, source_identity=push.acting_username))


@dataclass(frozen=True)
class _Claim:
    """Identifies one claim of a row: only its holder may finish it."""

    push_id: UUID
    claimed_at: dt.datetime
    package_id: int
    decision: bool  # a decision push: delivering it (or a conflict) moves the package's effective status

    def finish(self, state: str, **fields: Any) -> bool:
        now = timezone.now()
        if "last_error" in fields:
            fields["last_error"] = fit(str(fields["last_error"]), MAX_ERROR)
        with transaction.atomic():  # the state change, its audit entry and the review state commit together
            updated = PushOutbox.objects.filter(
                pk=self.push_id, state=State.SENDING, claimed_at=self.claimed_at
            ).update(state=state, updated_at=now, **fields)
            if updated and state in (State.SENT, State.FAILED, State.CONFLICT):
                audit_log.audit_push(self.push_id, state)
            if updated and self.decision and state not in PushOutbox.UNDELIVERED_STATES:
                review_state_refresh([self.package_id])
        if not updated:
            log.warning("push %s: claim lost before it could be marked %s", self.push_id, state)
        return bool(updated)


def _earlier_active(push: PushOutbox) -> PushOutbox | None:
    """A pending/sending push of the same package created before this one (flags before the
    decision written in the same transaction, should their timestamps tie)."""
    before = Q(created_at__lt=push.created_at)
    if push.kind == Kind.DECISION:
        before |= Q(created_at=push.created_at, kind=Kind.FLAGS)
    return (
        PushOutbox.objects.filter(before, package_id=push.package_id, state__in=ACTIVE_STATES)
        .exclude(pk=push.pk)
        .order_by("created_at")
        .first()
    )


def _superseded_by(push: PushOutbox) -> PushOutbox | None:
    """A later decision push already sent: it wrote the complete state, flags included."""
    if push.kind != Kind.FLAGS:
        return None
    return (
        PushOutbox.objects.filter(
            package_id=push.package_id, kind=Kind.DECISION, state=State.SENT, created_at__gt=push.created_at
        )
        .order_by("created_at")
        .first()
    )


def _set_by_later_decision(push: PushOutbox, found: str) -> bool:
    """Whether ``found`` is the target of a later decision push of the dashboard itself (on its
    way or sent), e.g. after a recovery re-sent a whole series: not a change made elsewhere."""
    return (
        bool(found)
        and PushOutbox.objects.filter(
            package_id=push.package_id,
            kind=Kind.DECISION,
            target_status=found,
            created_at__gt=push.created_at,
            state__in=(State.PENDING, State.SENDING, State.SENT),
        ).exists()
    )


def _enqueue_next(push: PushOutbox) -> None:
    """Kick the next pending push of the package now instead of waiting for its retry."""
    following = (
        PushOutbox.objects.filter(package_id=push.package_id, state=State.PENDING, created_at__gte=push.created_at)
        .exclude(pk=push.pk)
        .order_by("created_at")
        .values_list("pk", flat=True)
        .first()
    )
    if following is not None:
        push_enqueue(following)


def _refresh_mirror(push: PushOutbox) -> None:
    """Have the mirror show the registry's new state soon: ``refresh_package_task`` describes the
    package after this transaction commits (the push never writes the mirror itself)."""
    from registry_app.tasks import refresh_package_task

    package_id = push.package_id
    transaction.on_commit(lambda: refresh_package_task.apply_async(args=[package_id]), robust=True)


# --------------------------------------------------------------------------------------------- delivery


def push_execute(push_id: UUID | str, *, client: RegistryClient | None = None) -> PushOutbox:
    """Deliver one outbox row (see the module docstring). Returns the row as it ends up.

    Raises ``PushBlocked`` when an earlier row of the package is still on its way, and
    ``RetryableAwsError`` after putting the row back to pending; both mean "run me again later".
    No transaction is open while AWS is called; each state change is its own conditional UPDATE.
    """
    push = PushOutbox.objects.select_related("package__source", "package__group", "signoff").get(pk=push_id)
    if push.state not in CLAIMABLE_STATES:
        return push  # sent, conflicting, or being sent by someone else
    blocker = _earlier_active(push)
    if blocker is not None:
        raise PushBlocked(f"push {push.pk} waits for the earlier push {blocker.pk} ({blocker.state}) of this package")
    now = timezone.now()
    claimed = PushOutbox.objects.filter(pk=push.pk, state__in=CLAIMABLE_STATES).update(
        state=State.SENDING, attempts=F("attempts") + 1, claimed_at=now, updated_at=now
    )
    push = PushOutbox.objects.select_related("package__source").get(pk=push.pk)
    if not claimed:
        return push
    claim = _Claim(push.pk, now, push.package_id, push.kind == Kind.DECISION)
    try:
        _deliver(push, claim, client)
    except ConflictError as exc:  # SageMaker's "concurrent modification": worth another try
        claim.finish(State.PENDING, last_error=str(exc))
        raise RetryableAwsError(str(exc), operation=exc.operation, code=exc.code) from exc
    except RetryableAwsError as exc:
        claim.finish(State.PENDING, last_error=str(exc))
        raise
    except (AwsError, PushRefused) as exc:
        if claim.finish(State.FAILED, last_error=str(exc)):
            _enqueue_next(push)  # later pushes do not wait for a failed one
    except (OperationalError, InterfaceError) as exc:
        # The database connection dropped (failover, restart, a terminated backend): transient, so the
        # row goes back to pending for the task's retry, never to failed (which waits for staff). If
        # the database is still away the claim stays and pushes_resend_stuck re-sends it; either way
        # the delivery's describe tells whether the update already went through.
        with contextlib.suppress(DatabaseError):
            claim.finish(State.PENDING, last_error=f"Database connection lost while sending: {exc}")
        raise
    except Exception as exc:
        claim.finish(State.FAILED, last_error=f"Unexpected error: {exc!r}")
        raise
    push.refresh_from_db()
    return push


def _deliver(push: PushOutbox, claim: _Claim, client: RegistryClient | None) -> None:
    superseding = _superseded_by(push)
    if superseding is not None:
        claim.finish(
            State.SENT,
            sent_at=timezone.now(),
            last_error=f"Not sent: the later decision push {superseding.pk} already wrote the complete state.",
        )
        return
    client = client or registry_client_for(push)
    record = client.describe_package(push.package.arn)
    found = str(record.get("ModelApprovalStatus") or "")
    outside = found != push.expected_status and not (push.target_status and found == push.target_status)
    if outside and not _set_by_later_decision(push, found):
        _mark_conflict(push, claim, record)
        return
    changed = _reviewed_content_changed(push, record)
    if changed:
        _mark_content_conflict(push, claim, record, changed)
        return
    params = intended(push, record)
    if already_applied(params, record, push):
        with transaction.atomic():
            if claim.finish(State.SENT, sent_at=timezone.now(), last_error="Already applied in the registry."):
                _refresh_mirror(push)
                _enqueue_next(push)
        return
    client.update_package(**params, ClientToken=str(push.pk))
    with transaction.atomic():
        if claim.finish(State.SENT, sent_at=timezone.now(), last_error=""):
            _refresh_mirror(push)
            _enqueue_next(push)


def _approves(push: PushOutbox) -> bool:
    """Whether the push writes an approval: an Approved decision, or a role flag set to true."""
    if push.kind == Kind.DECISION:
        return push.target_status == ApprovalStatus.APPROVED
    return any(value is not None for value in (push.flags or {}).values())


def _reviewed_content_changed(push: PushOutbox, record: dict[str, Any]) -> list[str]:
    """The reviewed parts (card, description, inference specification, metrics, metadata...) in
    which the registry's package, as just described, differs from what the sign-offs reviewed.

    Empty when nothing changed, or when the push approves nothing (a rejection or revocation is
    never unsafe) or carries no sign-off fingerprint (revocations and archives).
    """
    if not _approves(push) or push.signoff_id is None:
        return []
    signoff = push.signoff
    assert signoff is not None
    fresh, detail = fingerprint_of_record(push.package, record)
    if fresh == signoff.fingerprint:
        return []
    reviewed = signoff.fingerprint_detail if isinstance(signoff.fingerprint_detail, dict) else {}
    return sorted(k for k in detail if k != "v" and reviewed.get(k) != detail[k]) or ["content"]


def _mark_content_conflict(push: PushOutbox, claim: _Claim, record: dict[str, Any], changed: list[str]) -> None:
    """The registry's content is no longer what was reviewed: write nothing, mark the sign-offs
    stale (they must be redone on the new content), tell the signers, refresh the mirror."""
    detail = {**conflict_detail(push, record), "reason": "content_changed", "changed": changed}
    message = (
        "Not written: the package's reviewed content changed in the registry after the review "
        f"({', '.join(changed)}); the sign-offs are stale and must be redone on the new content."
    )
    fingerprint, _ = fingerprint_of_record(push.package, record)
    with transaction.atomic():
        if claim.finish(State.CONFLICT, conflict_detail=detail, last_error=message):
            signoffs_mark_stale(
                push.package, fingerprint=fingerprint, via=audit_log.Via.TASK, acting_username=push.acting_username
            )
            from registry_app.notifications.enqueue import enqueue_conflict

            enqueue_conflict(push.pk)
            _refresh_mirror(push)
            _enqueue_next(push)


def _mark_conflict(push: PushOutbox, claim: _Claim, record: dict[str, Any]) -> None:
    detail = conflict_detail(push, record)
    who = f" by {detail['last_modified_by']}" if detail["last_modified_by"] else ""
    message = (
        f"Not written: the registry shows {detail['found_status'] or 'no status'}{who}, but the review "
        f"began at {push.expected_status}; the status was changed outside the dashboard."
    )
    with transaction.atomic():
        if claim.finish(State.CONFLICT, conflict_detail=detail, last_error=message):
            from registry_app.notifications.enqueue import enqueue_conflict

            enqueue_conflict(push.pk)
            _refresh_mirror(push)
            _enqueue_next(push)


# --------------------------------------------------------------------------------------------- staff & beat


def push_retry(*, user: Any, push_id: UUID | str) -> PushOutbox:
    """Staff: send a failed or conflicting push again.

    Transaction: one conditional UPDATE (failed/conflict -> pending), the task is sent on
    commit. Retrying a *conflict* is the explicit, recorded decision to apply the dashboard's
    change over the one made elsewhere: ``expected_status`` becomes the status the conflict found,
    so the push goes through if the registry still shows it (and conflicts again if it moved on).
    Raises ``PermissionDenied`` for non-staff, ``ValueError`` for an unknown or non-retryable push.
    """
    try:
        push = PushOutbox.objects.get(pk=push_id)
    except (PushOutbox.DoesNotExist, ValueError, TypeError) as exc:
        raise ValueError("There is no such push.") from exc
    if not (getattr(user, "is_staff", False) and getattr(user, "is_active", False)):
        raise PermissionDenied("Only staff can retry a push to SageMaker.")
    if not can_retry_push(user, push):
        raise ValueError(
            f"This push is {push.get_state_display().lower()}; only failed or conflicting pushes can be retried."
        )
    note = f"Retried by {user.get_username()} at {timezone.now():%Y-%m-%d %H:%M} UTC"
    fields: dict[str, Any] = {"state": State.PENDING, "claimed_at": None, "updated_at": timezone.now()}
    if push.state == State.CONFLICT:
        found = str((push.conflict_detail or {}).get("found_status") or "")
        if found:
            fields["expected_status"] = found
            note += f" over the change made elsewhere (registry status {found})"
    fields["last_error"] = fit(f"{note}. Previously: {push.last_error}" if push.last_error else note, MAX_ERROR)
    with transaction.atomic():
        updated = PushOutbox.objects.filter(pk=push.pk, state__in=RETRYABLE_PUSH_STATES).update(**fields)
        if not updated:
            raise ValueError("This push changed meanwhile; reload the page.")
        audit_log.audit_push(push.pk, "retried", actor=user, via=audit_log.Via.WEB, note=note)
        if push.kind == Kind.DECISION:  # a conflict back on its way decides the package again
            review_state_refresh([push.package_id])
        push_enqueue(push.pk)
    push.refresh_from_db()
    return push


def pushes_resend_stuck(*, older_than_seconds: int = 300) -> int:
    """Beat: re-send pushes nobody is working on. Returns how many were sent again.

    * pending for longer than ``older_than_seconds``: the task never ran (broker or worker
      down at sign-off time) or gave up retrying;
    * sending with a claim older than that: the worker died mid-push. Reset to pending; the
      delivery's describe tells whether the update had already gone through.

    Idempotent: re-sent rows get ``updated_at=now``, so a second call right after sends nothing,
    and a duplicate task claims nothing.
    """
    now = timezone.now()
    cutoff = now - dt.timedelta(seconds=older_than_seconds)
    with transaction.atomic():
        PushOutbox.objects.filter(state=State.SENDING, claimed_at__lt=cutoff).update(
            state=State.PENDING,
            updated_at=now,
            last_error=f"The worker stopped while sending (claimed over {older_than_seconds} s ago); sent again.",
        )
        PushOutbox.objects.filter(state=State.PENDING, updated_at__lt=cutoff).update(updated_at=now)
        ids = list(
            PushOutbox.objects.filter(state=State.PENDING, updated_at=now)
            .order_by("created_at")
            .values_list("pk", flat=True)
        )
        for pid in ids:
            push_enqueue(pid)
    if ids:
        log.info("re-sent %d stuck push(es)", len(ids))
    return len(ids)
