"""Paging of the audit reads: page sizes and the keyset cursor.

A cursor is a position in a merged, newest-first order: ``(time, source, row id)``. ``Cursor.decode``
is the one place a ``?before=`` / ``?after=`` token from a request is turned back into a cursor.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

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
        if at is None or timezone.is_naive(at) or not parts[1] or not parts[2]:
            raise ValueError("malformed cursor")
        return cls(at, parts[1], parts[2])


def int_ident(pk: Any) -> str:
    return f"{int(pk):020d}"


def uuid_ident(pk: Any) -> str:
    return uuid.UUID(str(pk)).hex
