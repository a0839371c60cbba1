"""Paging of the audit reads: page sizes and the keyset cursor.

A cursor is a position in a merged, newest-first order: ``(time, source, row id)``. ``Cursor.decode``
is the one place a ``?before=`` / ``?after=`` token from a request is turned back into a cursor.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from registry_app.audit.params import in_input_range

__all__ = ["MAX_PAGE_SIZE", "PAGE_SIZE", "Cursor", "int_ident", "uuid_ident"]

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


@dataclass(frozen=True, order=True)
class Cursor:
    """A position in a merged timeline: ``(at, source, ident)``; ``ident`` sorts like the row ids."""

    at: dt.datetime
    source: str
    ident: str

    def encode(self) -> str:
        text = f"{self.at.astimezone(dt.UTC).isoformat()}|{self.source}|{self.ident}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """Raises ValueError for anything that is not a cursor this module made."""
        try:
            text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise ValueError("malformed cursor") from exc
        parts = text.split("|")
        if len(parts) != 3:
            raise ValueError("malformed cursor")
        at = parse_datetime(parts[0])
        if at is None or timezone.is_naive(at) or not in_input_range(at) or not _ident_ok(parts[1], parts[2]):
            raise ValueError("malformed cursor")
        return cls(at, parts[1], parts[2])


# The keys of the sources the keyset-paged lists merge (``timeline.SOURCES``, plus the outside
# decisions list); a hand-made cursor naming anything else is refused. tests/audit holds the
# two lists equal.
CURSOR_SOURCES = frozenset(
    {
        "audit",
        "cloudtrail",
        "decision",
        "deployment.end",
        "deployment.start",
        "notification",
        "observation",
        "outside",
        "push.created",
        "push.outcome",
        "push.sent",
        "signoff",
        "signoff.stale",
    }
)
_ROW_ID = re.compile(r"[0-9]{1,20}")
_UUID_HEX = re.compile(r"[0-9a-f]{32}")


def _ident_ok(source: str, ident: str) -> bool:
    """A hand-made cursor must name a source we page and carry an id of that source's type."""
    if source not in CURSOR_SOURCES:
        return False
    if source.startswith("push."):
        return bool(_UUID_HEX.fullmatch(ident))
    return bool(_ROW_ID.fullmatch(ident)) and int(ident) < 2**63  # a 64-bit primary key


def int_ident(pk: Any) -> str:
    return f"{int(pk):020d}"


def uuid_ident(pk: Any) -> str:
    return uuid.UUID(str(pk)).hex
