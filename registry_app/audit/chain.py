"""The audit log's hash chain: what an entry's hash covers, and the walk that verifies the chain.

Every entry's ``hash`` is the SHA-256 of a canonical JSON document holding its content fields and
the previous entry's hash (``prev_hash``; the first entry's is 64 zeros). Editing an entry's
content breaks its hash, deleting one leaves a gap in ``seq`` (and a ``prev_hash`` that no longer
matches), and reordering entries breaks the ``prev_hash`` links: ``verify_audit_chain`` (and the
``verify_audit`` command) finds the first such entry.

Reads only: appending is ``log.audit_append``'s job.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from registry_app.models import AuditLogEntry

__all__ = [
    "GENESIS_HASH",
    "ChainProblem",
    "ChainReport",
    "canonical_content",
    "clean_text",
    "entry_hash",
    "jsonable",
    "verify_audit_chain",
]

GENESIS_HASH = "0" * 64


def clean_text(value: Any, limit: int | None = None) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\x00", "")  # PostgreSQL text cannot hold NUL
    return text[:limit] if limit else text


def jsonable(value: Any) -> Any:
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
        return clean_text(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat() if timezone.is_aware(value) else value.isoformat()
    if isinstance(value, dict):
        return {clean_text(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    return clean_text(value)


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
