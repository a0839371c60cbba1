"""The dashboard's own audit log: append-only and hash-chained.

Every entry's ``hash`` is the SHA-256 of a canonical JSON document holding its content fields and
the previous entry's hash (``prev_hash``; the first entry's is 64 zeros). Editing an entry's
content breaks its hash, deleting one leaves a gap in ``seq`` (and a ``prev_hash`` that no longer
matches), and reordering entries breaks the ``prev_hash`` links: ``verify_audit_chain`` (and the
``verify_audit`` command) finds the first such entry.

Appends are serialised, so two concurrent appends never fork the chain: on PostgreSQL a
transaction-scoped advisory lock, on SQLite a no-op write that takes the database's single write
lock before the newest entry is read. ``seq`` and ``hash`` are unique, so the database refuses a fork
even if the lock were bypassed. ``audit_append`` runs inside the caller's transaction (a savepoint):
the entry commits or rolls back with what it records, and the lock is held until that commit.

Append-only, without touching the model file: ``pre_save`` refuses to save an existing row and
``pre_delete`` refuses every delete (``Model.delete()`` and ``QuerySet.delete()``, which sends
``pre_delete`` per row when a receiver exists); the admin registers the model read-only.
``QuerySet.update()`` and raw SQL send no signal: the chain check is what catches those.

Also here: the few audit entries that come from Django signals (login, role membership, approval
policy edits), which the brief allows because they happen in web or command context.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in
from django.db import connection, transaction
from django.db.models import Model
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver
from django.utils import timezone

from registry_app.models import ApprovalPolicy, AuditLogEntry, ModelPackage

__all__ = [
    "GENESIS_HASH",
    "AuditContext",
    "AuditLogImmutable",
    "ChainProblem",
    "ChainReport",
    "audit_append",
    "audit_decision",
    "audit_push",
    "audit_signoff",
    "audit_signoffs_stale",
    "audit_context",
    "canonical_content",
    "current_audit_context",
    "entry_hash",
    "verify_audit_chain",
]

GENESIS_HASH = "0" * 64
# pg_advisory_xact_lock key: any constant bigint shared by every writer of the chain ("audit").
ADVISORY_LOCK_KEY = 0x6175646974

Via = AuditLogEntry.Via

_LIMITS = {"actor_name": 150, "correlation_id": 64, "action": 64, "subject_type": 64, "subject_id": 64}
_REPR_LIMIT = 300


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


# --------------------------------------------------------------------------------------------- hashing


def _clean_text(value: Any, limit: int | None = None) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\x00", "")  # PostgreSQL text cannot hold NUL
    return text[:limit] if limit else text


def _jsonable(value: Any) -> Any:
    """A JSON value that reads back from either database exactly as written.

    Integral floats become ints (PostgreSQL's jsonb prints 1e20 as an integer); non-finite floats,
    datetimes and other objects become strings; NUL characters are dropped.
    """
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return int(value) if value.is_integer() else value
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat() if timezone.is_aware(value) else value.isoformat()
    if isinstance(value, dict):
        return {_clean_text(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    return _clean_text(value)


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def canonical_content(entry: AuditLogEntry) -> dict[str, Any]:
    """The fields an entry's hash covers (``actor`` is covered through its name snapshot)."""
    return {
        "seq": int(entry.seq),
        "created_at": _iso(entry.created_at),
        "actor_name": entry.actor_name,
        "via": entry.via,
        "correlation_id": entry.correlation_id,
        "action": entry.action,
        "subject_type": entry.subject_type,
        "subject_id": entry.subject_id,
        "subject_repr": entry.subject_repr,
        "package_id": entry.package_id,
        "before": entry.before,
        "after": entry.after,
        "message": entry.message,
    }


def entry_hash(entry: AuditLogEntry, prev_hash: str | None = None) -> str:
    """SHA-256 (hex) of the canonical JSON of the entry's content and the previous hash."""
    document = {"entry": canonical_content(entry), "prev_hash": entry.prev_hash if prev_hash is None else prev_hash}
    payload = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(payload.encode("ascii")).hexdigest()


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
        return subject._meta.model_name or "", str(subject.pk), _clean_text(subject, _REPR_LIMIT)
    if isinstance(subject, tuple) and len(subject) == 3:  # (type, id, repr) for non-model subjects
        kind, ident, text = subject
        return _clean_text(kind), _clean_text(ident), _clean_text(text, _REPR_LIMIT)
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
            actor_name=_clean_text(actor_name, _LIMITS["actor_name"]),
            via=via,
            correlation_id=_clean_text(correlation_id, _LIMITS["correlation_id"]),
            action=_clean_text(action, _LIMITS["action"]),
            subject_type=_clean_text(subject_type, _LIMITS["subject_type"]),
            subject_id=_clean_text(subject_id, _LIMITS["subject_id"]),
            subject_repr=subject_repr,
            package_id=package_id,
            before=_jsonable(before),
            after=_jsonable(after),
            message=_clean_text(message),
            prev_hash=last.hash if last else GENESIS_HASH,
        )
        entry.hash = entry_hash(entry)
        entry.save(force_insert=True)
    return entry


# --------------------------------------------------------------------------------------------- verify


@dataclass(frozen=True)
class ChainProblem:
    seq: int  # the entry named: the edited or reordered one, or the missing seq
    entry_id: int | None  # the row found at that position (None when missing at the end)
    kind: str  # "edited" | "missing" | "reordered" | "bad_genesis"
    detail: str

    def __str__(self) -> str:
        where = f"entry #{self.seq}" + (f" (id {self.entry_id})" if self.entry_id is not None else "")
        return f"{where}: {self.detail}"


@dataclass(frozen=True)
class ChainReport:
    checked: int
    head_seq: int | None
    head_hash: str
    problem: ChainProblem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_audit_chain(*, chunk_size: int = 2000) -> ChainReport:
    """Walk the whole chain in ``seq`` order and report the first broken entry.

    * a ``seq`` other than the next expected one: entries are missing (deleted) before it;
    * a ``prev_hash`` other than the previous entry's hash: the chain was reordered or cut;
    * a ``hash`` that does not match the entry's content: the entry was edited.

    Streams the table (``.iterator()``); memory stays flat at any size. Deleting the newest
    entries leaves a shorter valid chain; compare ``head_seq``/``head_hash`` with a copy kept
    elsewhere (e.g. the last exported auditor pack) to detect that.
    """
    expected_seq = 1
    prev_hash = GENESIS_HASH
    checked = 0
    last_seq: int | None = None
    rows = AuditLogEntry.objects.order_by("seq").iterator(chunk_size=chunk_size)
    for entry in rows:
        problem: ChainProblem | None = None
        if entry.seq != expected_seq:
            if entry.seq > expected_seq:
                missing = f"#{expected_seq}" if entry.seq == expected_seq + 1 else f"#{expected_seq}–#{entry.seq - 1}"
                problem = ChainProblem(
                    expected_seq,
                    entry.pk,
                    "missing",
                    f"entries {missing} are missing before entry #{entry.seq} (deleted?)",
                )
            else:  # pragma: no cover - seq is unique, so order_by("seq") cannot go backwards
                problem = ChainProblem(entry.seq, entry.pk, "reordered", "seq out of order")
        elif entry.prev_hash != prev_hash:
            problem = ChainProblem(
                entry.seq,
                entry.pk,
                "reordered",
                "prev_hash does not match the previous entry's hash (entries reordered, replaced or removed)",
            )
        elif entry_hash(entry) != entry.hash:
            problem = ChainProblem(
                entry.seq, entry.pk, "edited", "content does not match its hash (the entry was edited)"
            )
        if problem is not None:
            return ChainReport(checked=checked, head_seq=last_seq, head_hash=prev_hash, problem=problem)
        checked += 1
        prev_hash = entry.hash
        last_seq = entry.seq
        expected_seq = entry.seq + 1
    return ChainReport(checked=checked, head_seq=last_seq, head_hash=prev_hash, problem=None)


# --------------------------------------------------------------------------------------------- guards


@receiver(pre_save, sender=AuditLogEntry, dispatch_uid="audit_refuse_update")
def _refuse_update(sender: type[AuditLogEntry], instance: AuditLogEntry, raw: bool = False, **_: Any) -> None:
    if raw:  # loaddata of a backup: rows arrive as they were
        return
    if not instance._state.adding:
        raise AuditLogImmutable(f"audit log entry #{instance.seq} is append-only and cannot be changed")


@receiver(pre_delete, sender=AuditLogEntry, dispatch_uid="audit_refuse_delete")
def _refuse_delete(sender: type[AuditLogEntry], instance: AuditLogEntry, **_: Any) -> None:
    raise AuditLogImmutable(f"audit log entry #{instance.seq} is append-only and cannot be deleted")


# --------------------------------------------------------------------------------------------- signal-written entries


def _request_correlation_id(request: Any) -> str:
    meta = getattr(request, "META", {}) or {}
    return str(meta.get("HTTP_X_REQUEST_ID") or meta.get("HTTP_X_AMZN_TRACE_ID") or "")[:64]


@receiver(user_logged_in, dispatch_uid="audit_login")
def _on_login(sender: Any, request: Any, user: Any, **_: Any) -> None:
    meta = getattr(request, "META", {}) or {}
    audit_append(
        "login",
        actor=user,
        via=Via.WEB,
        subject=user,
        after={"remote_addr": str(meta.get("REMOTE_ADDR") or "")},
        message=f"{user.get_username()} signed in",
        correlation_id=_request_correlation_id(request),
    )


def _role_entries(user: Any, group_names: list[str], *, granted: bool) -> None:
    ctx = current_audit_context()
    verb = "granted" if granted else "revoked"
    for name in sorted(group_names):
        audit_append(
            f"role.{verb}",
            actor=ctx.actor,
            via=ctx.via,
            subject=user,
            before=None if granted else {"role": name},
            after={"role": name} if granted else None,
            message=f"Role {name} {verb} {'to' if granted else 'from'} {user.get_username()}",
            correlation_id=ctx.correlation_id,
        )


@receiver(m2m_changed, sender=get_user_model().groups.through, dispatch_uid="audit_roles")
def _on_roles_changed(
    sender: Any, instance: Any, action: str, reverse: bool, model: Any, pk_set: set[Any] | None, **_: Any
) -> None:
    """User.groups changes (grant_role, the admin, group.user_set): one entry per user and role."""
    from django.contrib.auth.models import Group

    user_model = get_user_model()
    if action == "pre_clear":
        # After the clear the memberships are gone; remember them now.
        if reverse:
            instance._audit_cleared = list(instance.user_set.all())
        else:
            instance._audit_cleared = list(instance.groups.values_list("name", flat=True))
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    granted = action == "post_add"
    if action == "post_clear":
        cleared = getattr(instance, "_audit_cleared", [])
        if reverse:
            for user in cleared:
                _role_entries(user, [instance.name], granted=False)
        else:
            _role_entries(instance, list(cleared), granted=False)
        return
    if not pk_set:
        return
    if reverse:  # group.user_set.add(users): instance is the group
        for user in user_model.objects.filter(pk__in=pk_set).order_by("pk"):
            _role_entries(user, [instance.name], granted=granted)
    else:
        names = list(Group.objects.filter(pk__in=pk_set).values_list("name", flat=True))
        _role_entries(instance, names, granted=granted)


_POLICY_FIELDS = ("name", "spec", "is_default", "group_name", "tag_key", "tag_value", "priority")


def _policy_snapshot(policy: ApprovalPolicy) -> dict[str, Any]:
    return {name: getattr(policy, name) for name in _POLICY_FIELDS}


@receiver(pre_save, sender=ApprovalPolicy, dispatch_uid="audit_policy_before")
def _policy_before(sender: Any, instance: ApprovalPolicy, raw: bool = False, **_: Any) -> None:
    if raw or instance.pk is None:
        instance._audit_before = None
        return
    previous = ApprovalPolicy.objects.filter(pk=instance.pk).first()
    instance._audit_before = _policy_snapshot(previous) if previous else None


@receiver(post_save, sender=ApprovalPolicy, dispatch_uid="audit_policy_saved")
def _policy_saved(sender: Any, instance: ApprovalPolicy, created: bool, raw: bool = False, **_: Any) -> None:
    if raw:
        return
    before = getattr(instance, "_audit_before", None)
    after = _policy_snapshot(instance)
    if not created and _jsonable(before) == _jsonable(after):
        return
    ctx = current_audit_context()
    audit_append(
        "policy.created" if created else "policy.changed",
        actor=ctx.actor,
        via=ctx.via,
        subject=instance,
        before=before,
        after=after,
        message=f"Approval policy {instance.name} {'created' if created else 'changed'}",
        correlation_id=ctx.correlation_id,
    )


@receiver(post_delete, sender=ApprovalPolicy, dispatch_uid="audit_policy_deleted")
def _policy_deleted(sender: Any, instance: ApprovalPolicy, **_: Any) -> None:
    ctx = current_audit_context()
    audit_append(
        "policy.deleted",
        actor=ctx.actor,
        via=ctx.via,
        subject=("approvalpolicy", str(instance.pk), _clean_text(instance, _REPR_LIMIT)),
        before=_policy_snapshot(instance),
        message=f"Approval policy {instance.name} deleted",
        correlation_id=ctx.correlation_id,
    )


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
    from registry_app.models import PushOutbox

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
