"""CloudTrail's S3 delivery: the trail's key layout (``AWSLogs/.../CloudTrail/<region>/``) and its log
files (gzip'd ``{"Records": [...]}``). Pure.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
import zlib
from typing import Any

__all__ = [
    "LogFileError",
    "awslogs_prefix",
    "day_start_after",
    "decompress",
    "delivery_time",
    "is_log_key",
    "parse_log_file",
    "parse_log_file_texts",
    "rewound_start_after",
    "trail_root",
]


class LogFileError(ValueError):
    """A trail log file that is not gzip'd ``{"Records": [...]}`` JSON."""


# --------------------------------------------------------------------------------------------- log files


_RECORDS_OPEN = re.compile(r'\s*\{\s*"Records"\s*:\s*\[\s*')
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def parse_log_file_texts(body: bytes) -> list[tuple[dict[str, Any], str]]:
    """Like ``parse_log_file``, with each record's own JSON text: ``[(record, text), ...]``.

    Walks the ``Records`` array with ``raw_decode`` (the same C scanner as ``json.loads``), so the
    text of each record is a slice of the file, not a re-serialisation. Anything but the plain
    ``{"Records": [...]}`` layout falls back to ``parse_log_file`` (texts re-serialised).
    """
    text = decompress(body).decode("utf-8", "strict") if body else ""
    opening = _RECORDS_OPEN.match(text)
    if opening is None:
        return [(record, json.dumps(record)) for record in parse_log_file(body)]
    out: list[tuple[dict[str, Any], str]] = []
    pos = opening.end()
    try:
        if text.startswith("]", pos):
            pos += 1
        else:
            while True:
                record, end = _DECODER.raw_decode(text, pos)
                if isinstance(record, dict):
                    out.append((record, text[pos:end]))
                pos = _WHITESPACE.match(text, end).end()  # type: ignore[union-attr]
                if text.startswith(",", pos):
                    pos = _WHITESPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
                    continue
                if text.startswith("]", pos):
                    pos += 1
                    break
                raise ValueError(f"expected , or ] at {pos}")
        pos = _WHITESPACE.match(text, pos).end()  # type: ignore[union-attr]
        if not text.startswith("}", pos) or text[pos + 1 :].strip():
            return [(record, json.dumps(record)) for record in parse_log_file(body)]
    except ValueError as exc:
        raise LogFileError(f"not JSON: {exc}") from exc
    return out


def decompress(body: bytes) -> bytes:
    """A trail file's content: gunzip'd when gzip'd (``LogFileError`` if unreadable), else as is."""
    if body[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as exc:
            raise LogFileError(f"not a readable gzip file: {exc}") from exc
    return body


def parse_log_file(body: bytes) -> list[dict[str, Any]]:
    """A trail log file (gzip'd or plain ``{"Records": [...]}``) → its records; LogFileError if not."""
    if body[:2] == b"\x1f\x8b":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as exc:
            raise LogFileError(f"not a readable gzip file: {exc}") from exc
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise LogFileError(f"not JSON: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("Records"), list):
        raise LogFileError('not a CloudTrail log file (no "Records" list)')
    return [record for record in document["Records"] if isinstance(record, dict)]


# --------------------------------------------------------------------------------------------- S3 layout

_LOG_NAME = re.compile(r"^(?P<account>\d{12})_CloudTrail_(?P<region>[a-z0-9-]+)_(?P<ts>\d{8}T\d{4}Z)_[^/]+\.json\.gz$")


def awslogs_prefix(prefix: str) -> str:
    """``<prefix>/AWSLogs/`` (no leading slash; just ``AWSLogs/`` without a prefix)."""
    head = prefix.strip("/")
    return f"{head}/AWSLogs/" if head else "AWSLogs/"


def trail_root(prefix: str, account: str, region: str, org_id: str = "") -> str:
    """``<prefix>/AWSLogs/[<o-id>/]<account>/CloudTrail/<region>/`` (no leading slash)."""
    org = f"{org_id}/" if org_id else ""
    return f"{awslogs_prefix(prefix)}{org}{account}/CloudTrail/{region}/"


def is_log_key(key: str) -> bool:
    """A CloudTrail log file (not a digest, Insights or Lake file, not a folder marker)."""
    if "/CloudTrail/" not in key:
        return False
    return bool(_LOG_NAME.match(key.rsplit("/", 1)[-1]))


def delivery_time(key: str) -> dt.datetime | None:
    """The delivery minute in a log file's name (``..._20150901T1055Z_...``)."""
    match = _LOG_NAME.match(key.rsplit("/", 1)[-1])
    if not match:
        return None
    return dt.datetime.strptime(match["ts"], "%Y%m%dT%H%MZ").replace(tzinfo=dt.UTC)


def day_start_after(root: str, day: dt.date) -> str:
    """A ``StartAfter`` that lists ``day``'s folder and everything later under ``root``."""
    return f"{root}{day:%Y/%m/%d}/"


def rewound_start_after(root: str, key: str, overlap: dt.timedelta) -> str:
    """A ``StartAfter`` ``overlap`` before ``key``'s delivery minute.

    File names carry the delivery minute plus a random suffix, so a file delivered in the same
    minute as the last one read can sort before it: listing again from a little earlier (and
    skipping the keys already read) makes sure such a file is not missed.
    """
    match = _LOG_NAME.match(key.rsplit("/", 1)[-1])
    when = delivery_time(key)
    if match is None or when is None or not key.startswith(root):
        return key
    earlier = when - overlap
    stamp = earlier.strftime("%Y%m%dT%H%MZ")
    return f"{root}{earlier:%Y/%m/%d}/{match['account']}_CloudTrail_{match['region']}_{stamp}"
