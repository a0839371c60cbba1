"""The dashboard's own audit log: append-only and hash-chained (the hash rules: ``chain``).

Appends are serialised, so two concurrent appends never fork the chain: on PostgreSQL a
transaction-scoped advisory lock, on SQLite a no-op write that takes the database's single write
lock before the newest entry is read. ``seq`` and ``hash`` are unique, so the database refuses a fork
even if the lock were bypassed. ``audit_append`` runs inside the caller's transaction (a savepoint):
the entry commits or rolls back with what it records, and the lock is held until that commit.

Append-only, without touching the model file: the receivers in ``receivers`` (connected in
``RegistryAppConfig.ready()``) refuse to save an existing row or delete any; the admin registers
the model read-only. ``QuerySet.update()`` and raw SQL send no signal: the chain check is what
catches those.

Also here: ``audit_context`` (who acts, for the signal-written entries) and the one-line helpers
the sign-off services call.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from registry_app.audit.chain import GENESIS_HASH, clean_text, entry_hash, jsonable
from registry_app.models import AuditLogEntry, ModelPackage, PushOutbox

__all__ = [
    "REPR_LIMIT",
    "AuditContext",
    "AuditLogImmutable",
    "audit_append",
    "audit_context",
    "audit_decision",
    "audit_push",
    "audit_signoff",
    "audit_signoffs_stale",
    "current_audit_context",
]

# pg_advisory_xact_lock key: any constant bigint shared by every writer of the chain ("audit").
ADVISORY_LOCK_KEY = 0x6175646974

Via = AuditLogEntry.Via

_LIMITS = {"actor_name": 150, "correlation_id": 64, "action": 64, "subject_type": 64, "subject_id": 64}
REPR_LIMIT = 300


class AuditLogImmutable(Exception):
    """An attempt to change or delete an audit log entry."""


# --------------------------------------------------------------------------------------------- context


@dataclass(frozen=True)
class AuditContext:
    """Who is acting, through what, for entries written by signals (which get no arguments)."""

    actor: Any = None
    via: str = Via.COMMAND
    correlation_id: str = ""


_context: contextvars.ContextVar[AuditContext | None] = contextvars.ContextVar("audit_context", default=None)


@contextlib.contextmanager
def audit_context(*, actor: Any = None, via: str, correlation_id: str = "") -> Iterator[AuditContext]:
    """Within the block, signal-written entries name ``actor`` and ``via`` (e.g. an admin request)."""
    ctx = AuditContext(actor=actor, via=via, correlation_id=correlation_id)
    token = _context.set(ctx)
    try:
        yield ctx
    finally:
        _context.reset(token)


def current_audit_context() -> AuditContext:
    """The innermost ``audit_context``; outside one, a management command (no person known)."""
    return _context.get() or AuditContext()


# --------------------------------------------------------------------------------------------- append


def _lock_chain() -> None:
    """Take the chain's write lock until the end of the current transaction."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK_KEY])
        elif connection.vendor == "sqlite":
            # A write statement (even one that changes nothing) takes SQLite's single write lock, so a
            # concurrent appender waits (busy timeout) instead of reading the same newest entry.
            cursor.execute(f"UPDATE {AuditLogEntry._meta.db_table} SET seq = seq WHERE 0")
        else:  # pragma: no cover - other backends: lock the newest row
            AuditLogEntry.objects.select_for_update().order_by("-seq").values_list("pk", flat=True).first()


def _subject_fields(subject: Any) -> tuple[str, str, str]:
    if subject is None:
        return "", "", ""
    if isinstance(subject, Model):
        return subject._meta.model_name or "", str(subject.pk), clean_text(subject, REPR_LIMIT)
    if isinstance(subject, tuple) and len(subject) == 3:  # (type, id, repr) for non-model subjects
        kind, ident, text = subject
        return clean_text(kind), clean_text(ident), clean_text(text, REPR_LIMIT)
    raise TypeError(f"audit subject must be a model instance or a (type, id, repr) tuple, not {type(subject)!r}")


def _actor_fields(actor: Any) -> tuple[Any, str]:
    """(user or None, name snapshot). ``actor`` is a user, a plain name (e.g. a push's acting
    username or a CloudTrail principal) or None (the system)."""
    if actor is None:
        return None, ""
    if isinstance(actor, str):
        return None, actor
    if getattr(actor, "is_authenticated", False) and getattr(actor, "pk", None) is not None:
        return actor, actor.get_username()
    return None, ""


def audit_append(
    action: str,
    *,
    actor: Any = None,
    via: str,
    subject: Any = None,
    package: ModelPackage | int | None = None,
    before: Any = None,
    after: Any = None,
    message: str = "",
    correlation_id: str = "",
) -> AuditLogEntry:
    """Append one entry to the chain and return it.

    Transaction: a savepoint inside the caller's transaction (or its own when there is none). It
    takes the chain lock (held until the outermost commit), reads the newest entry, and inserts the
    next one with ``seq + 1``, ``prev_hash`` and ``hash``. ``created_at`` never goes backwards along
    the chain, so ``seq`` order is time order. No side effects beyond the INSERT. Queries: 3.

    ``actor``: a user, a name (str) or None; ``subject``: a model instance or ``(type, id, repr)``;
    ``before``/``after``: JSON-able snapshots (normalised so they read back identically).
    """
    if via not in Via.values:
        raise ValueError(f"unknown audit via {via!r}; one of {', '.join(Via.values)}")
    user, actor_name = _actor_fields(actor)
    subject_type, subject_id, subject_repr = _subject_fields(subject)
    package_id = package.pk if isinstance(package, ModelPackage) else package
    with transaction.atomic():
        _lock_chain()
        last = AuditLogEntry.objects.order_by("-seq").only("seq", "hash", "created_at").first()
        now = timezone.now()
        if last is not None and last.created_at > now:
            now = last.created_at
        entry = AuditLogEntry(
            seq=(last.seq + 1) if last else 1,
            created_at=now,
            actor=user,
            actor_name=clean_text(actor_name, _LIMITS["actor_name"]),
            via=via,
            correlation_id=clean_text(correlation_id, _LIMITS["correlation_id"]),
            action=clean_text(action, _LIMITS["action"]),
            subject_type=clean_text(subject_type, _LIMITS["subject_type"]),
            subject_id=clean_text(subject_id, _LIMITS["subject_id"]),
            subject_repr=subject_repr,
            package_id=package_id,
            before=jsonable(before),
            after=jsonable(after),
            message=clean_text(message),
            prev_hash=last.hash if last else GENESIS_HASH,
        )
        entry.hash = entry_hash(entry)
        entry.save(force_insert=True)
    return entry


# --------------------------------------------------------------------------------------------- workflow helpers
# One-line calls for the sign-off services (signoffs.py, decisions.py, push.py): each writes one entry
# inside the caller's transaction.


def audit_signoff(signoff: Any, *, via: str = Via.WEB, correlation_id: str = "") -> AuditLogEntry:
    """``signoff.recorded``: who signed in which role, the decision, and the fingerprint reviewed."""
    return audit_append(
        "signoff.recorded",
        actor=signoff.user,
        via=via,
        subject=signoff,
        package=signoff.package_id,
        after={
            "role": signoff.role,
            "decision": signoff.decision,
            "fingerprint": signoff.fingerprint,
            "fingerprint_detail": signoff.fingerprint_detail,
            "comment": signoff.comment,
        },
        message=f"{signoff.user.get_username()} signed off as {signoff.role}: {signoff.decision}",
        correlation_id=correlation_id,
    )


def audit_signoffs_stale(
    package: Any, signoff_ids: list[int], *, fingerprint: str, actor: Any = None, via: str
) -> AuditLogEntry | None:
    """``signoffs.marked_stale``: the reviewed content changed; these sign-offs no longer count."""
    if not signoff_ids:
        return None
    return audit_append(
        "signoffs.marked_stale",
        actor=actor,
        via=via,
        subject=package,
        package=package,
        after={"signoff_ids": sorted(signoff_ids), "current_fingerprint": fingerprint},
        message=f"{len(signoff_ids)} sign-off(s) marked stale: the reviewed content changed",
    )


def audit_decision(decision: Any, *, via: str = Via.WEB, correlation_id: str = "") -> AuditLogEntry:
    """``decision.<kind>`` (policy, rejection, revocation, archive) with the target status."""
    return audit_append(
        f"decision.{decision.kind}",
        actor=decision.decided_by,
        via=via,
        subject=decision,
        package=decision.package_id,
        after={"kind": decision.kind, "status": decision.status, "description": decision.description},
        message=f"Decision ({decision.get_kind_display()}): {decision.status}",
        correlation_id=correlation_id,
    )


def audit_push(push_id: Any, state: str, *, actor: Any = None, via: str = Via.TASK, note: str = "") -> AuditLogEntry:
    """``push.<state>`` (sent, failed, conflict, retried) for one outbox row (one extra read)."""
    push = PushOutbox.objects.get(pk=push_id)
    return audit_append(
        f"push.{state}",
        actor=actor if actor is not None else (push.acting_username or None),
        via=via,
        subject=("pushoutbox", str(push.pk), f"push {push.pk} {push.kind}"),
        package=push.package_id,
        before={"expected_status": push.expected_status},
        after={
            "state": push.state,
            "target_status": push.target_status,
            "flags": push.flags,
            "attempts": push.attempts,
            "decision_id": push.decision_id,
            "signoff_id": push.signoff_id,
            "conflict_detail": push.conflict_detail or None,
            "last_error": push.last_error,
        },
        message=note or f"Push {push.pk} {state}",
        correlation_id=str(push.pk),
    )
