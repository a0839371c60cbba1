"""Anchors: copies of the audit chain's head (sequence number, hash, time) kept outside the database.

Deleting the newest audit entries leaves a shorter chain that verifies on its own; a copy of the
head written where the database's users cannot rewrite it is what shows the cut. Every anchor goes
to the structured log (logger ``registry_app.audit.anchor``, field ``audit_anchor``), and to:

* ``AUDIT_ANCHOR_S3_URI`` (``s3://bucket/prefix/``): one new object per anchor, named
  ``<prefix><seq, 20 digits>-<UTC time>.json`` so the newest head sorts last; with S3 Object Lock in
  compliance mode (docs/audit-anchor.md) nobody can delete or overwrite one before its retention ends;
* else the file ``VAR_DIR/audit-anchors.jsonl`` (one JSON line per anchor; weaker: whoever can write
  the server's disk can rewrite it).

``anchor_head`` runs hourly (beat) and at every auditor export; ``verification`` reads the anchors
back. An ``AuditAnchor`` row records each write for ``/metrics`` and the status page only.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from django.conf import settings
from django.utils import timezone

from registry_app.aws.anchor_store import AnchorBucket
from registry_app.aws.errors import AwsError
from registry_app.aws.sagemaker import UnsupportedUri, parse_s3_uri
from registry_app.models import AuditAnchor, AuditLogEntry

__all__ = ["Anchor", "AnchorStore", "anchor_head", "anchor_store", "current_head"]

log = logging.getLogger("registry_app.audit.anchor")

CHAIN_NAME = "registry_app audit log"
LOCAL_FILE = "audit-anchors.jsonl"


@dataclass(frozen=True)
class Anchor:
    seq: int | None  # None: the log was empty
    hash: str
    entry_created_at: str | None
    anchored_at: str
    reason: str
    chain: str = CHAIN_NAME

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Anchor:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("chain") != CHAIN_NAME:
            raise ValueError("not an audit anchor")
        seq = data.get("seq")
        return cls(
            seq=int(seq) if seq is not None else None,
            hash=str(data.get("hash") or ""),
            entry_created_at=data.get("entry_created_at"),
            anchored_at=str(data.get("anchored_at") or ""),
            reason=str(data.get("reason") or ""),
        )

    @property
    def anchored_time(self) -> dt.datetime | None:
        try:
            return dt.datetime.fromisoformat(self.anchored_at)
        except ValueError:
            return None


class AnchorStore(Protocol):
    location: str

    def write(self, anchor: Anchor) -> str: ...

    def newest_first(self) -> Iterator[tuple[str, Anchor]]: ...

    def protection(self) -> str: ...


class LocalStore:
    """Anchors appended to a file under ``VAR_DIR`` (one JSON line each, fsync'd)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)

    def write(self, anchor: Anchor) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(anchor.to_json() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return f"{self.location}"

    def newest_first(self) -> Iterator[tuple[str, Anchor]]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return
        for number in range(len(lines) - 1, -1, -1):
            try:
                yield f"{self.location}:{number + 1}", Anchor.from_json(lines[number])
            except ValueError:
                continue  # a torn last line (a crash mid-write) or garbage: skipped, not trusted

    def protection(self) -> str:
        return "local file (no write protection)"


class S3Store:
    """Anchors as objects in ``s3://bucket/prefix``, written with the dashboard's own credentials."""

    def __init__(self, uri: str, region: str) -> None:
        bucket, _, prefix = uri[len("s3://") :].partition("/") if uri.startswith("s3://") else ("", "", "")
        try:
            parse_s3_uri(f"s3://{bucket}/x")
        except UnsupportedUri as exc:
            raise ValueError(f"AUDIT_ANCHOR_S3_URI is not an s3://bucket/prefix/ URI: {uri!r}") from exc
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.location = f"s3://{bucket}/{self.prefix}"
        self.client = AnchorBucket(region)

    def key_for(self, anchor: Anchor) -> str:
        when = dt.datetime.fromisoformat(anchor.anchored_at).astimezone(dt.UTC)
        return f"{self.prefix}{anchor.seq or 0:020d}-{when:%Y%m%dT%H%M%S%fZ}.json"

    def write(self, anchor: Anchor) -> str:
        key = self.key_for(anchor)
        self.client.put(self.bucket, key, (anchor.to_json() + "\n").encode())
        return f"s3://{self.bucket}/{key}"

    def newest_first(self) -> Iterator[tuple[str, Anchor]]:
        keys = [k for k in self.client.keys(self.bucket, self.prefix) if k.endswith(".json")]
        for key in sorted(keys, reverse=True):
            try:
                yield f"s3://{self.bucket}/{key}", Anchor.from_json(self.client.read(self.bucket, key))
            except ValueError:
                continue

    def protection(self) -> str:
        try:
            lock = self.client.object_lock(self.bucket)
        except AwsError as exc:
            return f"unknown ({exc.code or exc})"
        return f"S3 Object Lock {lock}" if lock else "S3 without Object Lock"


def anchor_store() -> AnchorStore:
    uri = str(getattr(settings, "AUDIT_ANCHOR_S3_URI", "") or "")
    if uri:
        return S3Store(uri, str(getattr(settings, "AUDIT_ANCHOR_REGION", "") or "us-east-1"))
    return LocalStore(Path(getattr(settings, "AUDIT_ANCHOR_FILE", "") or Path(settings.VAR_DIR) / LOCAL_FILE))


def current_head() -> tuple[int | None, str, dt.datetime | None]:
    """(seq, hash, created_at) of the newest entry; (None, "", None) when the log is empty."""
    head = AuditLogEntry.objects.order_by("-seq").values_list("seq", "hash", "created_at").first()
    return (int(head[0]), str(head[1]), head[2]) if head else (None, "", None)


def anchor_head(reason: str = AuditAnchor.Reason.SCHEDULE, *, store: AnchorStore | None = None) -> AuditAnchor:
    """Write the chain's current head out (log line, then the store); never raises on a store error.

    No transaction is held across the write. Returns the ``AuditAnchor`` row (``error`` set when
    the copy could not be written; the log line is written regardless).
    """
    seq, head_hash, created = current_head()
    now = timezone.now()
    anchor = Anchor(
        seq=seq,
        hash=head_hash,
        entry_created_at=created.astimezone(dt.UTC).isoformat() if created else None,
        anchored_at=now.astimezone(dt.UTC).isoformat(),
        reason=str(reason),
    )
    log.info("audit anchor: head #%s %s", seq, head_hash, extra={"audit_anchor": asdict(anchor)})
    location, error = "", ""
    try:
        store = store or anchor_store()
        location = store.write(anchor)
    except (AwsError, OSError, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        location = getattr(store, "location", "") if store is not None else ""
        log.error("audit anchor: could not write the head #%s to %s: %s", seq, location or "the store", error)
    return AuditAnchor.objects.create(
        seq=seq,
        hash=head_hash,
        entry_time=created,
        anchored_at=now,
        reason=reason,
        location=location[:1200],
        error=error,
    )
