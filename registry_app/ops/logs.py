"""Log context: who and what a log line is about, carried in a ``ContextVar``.

The request middleware binds ``request_id`` and ``user``; the Celery signal handlers bind
``task_id``, ``task_name`` and ``source`` (and the ``request_id`` of the request that sent the
task). ``ContextFilter``, installed on the log handlers by ``settings.LOGGING``, copies the
current values onto every record, so the JSON formatter writes them as fields (``null`` when
unknown) and the plain formatter can ignore them. Context variables follow each thread (and
each asyncio task), so concurrent requests never see each other's values.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

__all__ = [
    "FIELDS",
    "ContextFilter",
    "bind",
    "clean_request_id",
    "current",
    "log_context",
    "new_request_id",
    "reset",
]

# Every record carries these attributes (None when not known in the current context).
FIELDS: tuple[str, ...] = ("request_id", "user", "task_id", "task_name", "source")

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("governance_log_context", default=_EMPTY)

# What we accept from a client's X-Request-ID: ids as load balancers and tracing tools write them
# (UUIDs, hex, AWS trace ids); anything else (too long, spaces, control characters) is replaced.
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=+@/-]{0,127}")


def current() -> Mapping[str, Any]:
    """The bound fields (read-only)."""
    return _context.get()


def bind(**fields: Any) -> contextvars.Token[Mapping[str, Any]]:
    """Add ``fields`` to the current context; pass the returned token to ``reset``."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown log context fields: {sorted(unknown)}")
    return _context.set(MappingProxyType({**_context.get(), **fields}))


def reset(token: contextvars.Token[Mapping[str, Any]]) -> None:
    _context.reset(token)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """``with log_context(source="prod"): ...`` binds fields for the block."""
    token = bind(**fields)
    try:
        yield
    finally:
        reset(token)


def new_request_id() -> str:
    return uuid.uuid4().hex


def clean_request_id(value: str | None) -> str | None:
    """The incoming id if it looks like one, else None (the caller then generates one)."""
    if value and _REQUEST_ID_RE.fullmatch(value):
        return value
    return None


# Attributes the request middleware sets on the HttpRequest, read back for records that carry the
# request (``django.request`` logs 4xx/5xx responses after the middleware chain has returned).
REQUEST_ATTRS: dict[str, str] = {"request_id": "request_id", "user": "log_username"}


class ContextFilter(logging.Filter):
    """Copy the bound context onto each record (never overwriting an explicit ``extra=``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        values = _context.get()
        request = getattr(record, "request", None)
        for name in FIELDS:
            if hasattr(record, name):
                continue
            value = values.get(name)
            if value is None and name in REQUEST_ATTRS:
                value = getattr(request, REQUEST_ATTRS[name], None)
            setattr(record, name, value)
        return True
