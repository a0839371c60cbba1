"""Exports of the audit pages: CSV, JSON and printable HTML, all streamed (auditor packs: ``packs``).

* CSV, JSON and print responses are ``StreamingHttpResponse`` objects over generators fed by
  ``.iterator()`` querysets, so a million-row export never sits in memory.
* CSV cells that a spreadsheet would run as a formula (starting with ``= + - @``, or a tab or
  carriage return) are prefixed with ``'``.

Who may export: staff and holders of the compliance role (``can_export``); the views answer 403
to everyone else.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.http import HttpRequest, StreamingHttpResponse
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import escape

from registry_app.audit.timeline_items import TimelineItem
from registry_app.audit.values import to_json
from registry_app.permissions import COMPLIANCE_ROLE, is_active_user, user_roles

__all__ = [
    "FORMATS",
    "PRINT_COLUMNS",
    "TIMELINE_COLUMNS",
    "can_export",
    "csv_chunks",
    "csv_response",
    "export_file_name",
    "export_response",
    "json_array_chunks",
    "json_response",
    "print_response",
    "safe_cell",
    "timeline_rows",
]

FORMATS = ("csv", "json", "print")
CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
TIMELINE_COLUMNS = ("at", "kind", "actor", "title", "detail", "package", "endpoint", "evidence_id", "validation", "raw")
PRINT_COLUMNS = ("at", "kind", "actor", "title", "detail", "package", "evidence_id", "validation")
_JSON_CHUNK = 200


def can_export(user: Any) -> bool:
    """Staff and compliance officers may download exports and auditor packs."""
    return is_active_user(user) and (bool(getattr(user, "is_staff", False)) or COMPLIANCE_ROLE in user_roles(user))


# --------------------------------------------------------------------------------------------- cells and chunks


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, bool | int | float):
        return str(value)
    return to_json(value, indent=None)


def safe_cell(value: Any) -> str:
    """A CSV cell a spreadsheet shows as text: formula-looking values get a leading apostrophe."""
    text = _plain(value)
    return "'" + text if text.startswith(CSV_FORMULA_PREFIXES) else text


class _Echo:
    """A file-like object whose ``write`` returns what it was given (csv.writer into a generator)."""

    def write(self, value: str) -> str:
        return value


def csv_chunks(columns: Iterable[str], rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    columns = list(columns)
    writer = csv.writer(_Echo())
    yield writer.writerow(columns)
    for row in rows:
        yield writer.writerow([safe_cell(row.get(column)) for column in columns])


def json_chunks(meta: dict[str, Any], items: Iterable[Any]) -> Iterator[str]:
    """``{"meta": {...}, "items": [...]}`` written a few items at a time."""
    yield '{"meta": ' + to_json(meta, indent=None) + ', "items": ['
    first = True
    buffer: list[str] = []
    for item in items:
        buffer.append(to_json(item, indent=None))
        if len(buffer) >= _JSON_CHUNK:
            yield ("" if first else ",") + ",".join(buffer)
            first, buffer = False, []
    if buffer:
        yield ("" if first else ",") + ",".join(buffer)
    yield "]}\n"


def json_array_chunks(items: Iterable[Any], *, wrap: str | None = None) -> Iterator[str]:
    """A bare JSON array (or ``{wrap: [...]}``) streamed a few items at a time."""
    yield ("{" + json.dumps(wrap) + ": [") if wrap else "["
    first = True
    buffer: list[str] = []
    for item in items:
        buffer.append(to_json(item, indent=None))
        if len(buffer) >= _JSON_CHUNK:
            yield ("" if first else ",\n") + ",\n".join(buffer)
            first, buffer = False, []
    if buffer:
        yield ("" if first else ",\n") + ",\n".join(buffer)
    yield "]}\n" if wrap else "]\n"


def export_file_name(stem: str, ext: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-") or "export"
    return f"{cleaned[:120]}.{ext}"


def _attachment(response: StreamingHttpResponse, filename: str) -> StreamingHttpResponse:
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    return response


def csv_response(columns: Iterable[str], rows: Iterable[dict[str, Any]], stem: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(csv_chunks(columns, rows), content_type="text/csv; charset=utf-8")
    return _attachment(response, export_file_name(stem, "csv"))


def json_response(meta: dict[str, Any], items: Iterable[Any], stem: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(json_chunks(meta, items), content_type="application/json")
    return _attachment(response, export_file_name(stem, "json"))


def print_response(
    request: HttpRequest, *, title: str, meta: dict[str, Any], columns: Iterable[str], rows: Iterable[dict[str, Any]]
) -> StreamingHttpResponse:
    """A printable HTML table (print CSS in app.css), streamed row by row; every cell escaped."""
    columns = list(columns)
    context = {"title": title, "meta": sorted(meta.items()), "columns": columns, "user": request.user}

    def chunks() -> Iterator[str]:
        yield render_to_string("registry_app/audit/print_head.html", context, request=request)
        count = 0
        for row in rows:
            count += 1
            cells = "".join(f"<td>{escape(_plain(row.get(column)))}</td>" for column in columns)
            yield f"<tr>{cells}</tr>\n"
        yield render_to_string("registry_app/audit/print_tail.html", {**context, "count": count}, request=request)

    response = StreamingHttpResponse(chunks(), content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


def export_response(
    request: HttpRequest,
    fmt: str,
    *,
    title: str,
    stem: str,
    meta: dict[str, Any],
    columns: Iterable[str],
    rows: Callable[[], Iterable[dict[str, Any]]],
    json_items: Callable[[], Iterable[Any]] | None = None,
    print_columns: Iterable[str] | None = None,
) -> StreamingHttpResponse:
    """The ``?format=csv|json|print`` answer of a page (``rows`` is called lazily, once)."""
    meta = {**meta, "exported_at": timezone.now().isoformat(), "exported_by": request.user.get_username()}
    if fmt == "csv":
        return csv_response(columns, rows(), stem)
    if fmt == "json":
        return json_response(meta, (json_items or rows)(), stem)
    return print_response(request, title=title, meta=meta, columns=print_columns or columns, rows=rows())


def timeline_rows(items: Iterable[TimelineItem]) -> Iterator[dict[str, Any]]:
    for item in items:
        row = item.export_row()
        row["raw"] = to_json(item.raw, indent=None)
        yield row
