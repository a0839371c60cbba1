"""Values as the audit pages, answers and exports write them out: ISO-8601 UTC times, JSON text and
user names. Pure.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

__all__ = ["iso", "to_json", "username"]


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def to_json(value: Any, *, indent: int | None = 2) -> str:
    return json.dumps(value, indent=indent, sort_keys=True, default=_json_default, ensure_ascii=False)


def iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value is not None else None


def username(user: Any) -> str:
    return user.get_username() if user is not None else ""
