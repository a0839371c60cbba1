"""An audit item's raw evidence (a CloudTrail record, an audit-log entry, a sign-off...) as a short list
of ``(field, value)`` pairs a person can read; the raw JSON stays available behind a disclosure.

Pure: no database, no HTML. Values are text for the template to escape.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_FIELDS", "evidence_fields"]

MAX_FIELDS = 14
MAX_VALUE = 240
# CloudTrail's bookkeeping: true of every record, so not worth a line (still in the raw JSON).
_NOISE = frozenset(
    {
        "eventVersion",
        "eventID",
        "eventType",
        "readOnly",
        "managementEvent",
        "eventCategory",
        "recipientAccountId",
        "requestID",
        "tlsDetails",
        "sessionCredentialFromConsole",
        "userIdentity.principalId",
        "userIdentity.accessKeyId",
        "userIdentity.sessionContext.attributes.creationDate",
        "userIdentity.sessionContext.attributes.mfaAuthenticated",
        "userIdentity.sessionContext.sessionIssuer.principalId",
        "userIdentity.sessionContext.sessionIssuer.accountId",
        "userIdentity.sessionContext.sessionIssuer.type",
        "userIdentity.sessionContext.webIdFederationData",
        "userIdentity.sessionContext.sessionIssuer.arn",
    }
)
# Shown first when present, in this order.
_FIRST = (
    "eventName",
    "eventTime",
    "userIdentity.arn",
    "sourceIPAddress",
    "errorCode",
    "errorMessage",
    "action",
    "message",
)


def _text(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        text = str(value)
    else:
        text = json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def _flatten(value: Any, prefix: str, depth: int, out: list[tuple[str, Any]]) -> None:
    if isinstance(value, dict) and value and depth < 4:
        for key, inner in value.items():
            _flatten(inner, f"{prefix}.{key}" if prefix else str(key), depth + 1, out)
    elif isinstance(value, list) and value and all(not isinstance(v, dict | list) for v in value):
        out.append((prefix, ", ".join(_text(v) for v in value)))
    elif value in (None, "", [], {}):
        return
    else:
        out.append((prefix, value))


def evidence_fields(raw: Any, *, limit: int = MAX_FIELDS) -> tuple[list[tuple[str, str]], int]:
    """``([(field, value), ...], more)``: the first ``limit`` readable fields (dotted paths, the usual
    CloudTrail ones first, bookkeeping left out) and how many more only the raw JSON shows."""
    if not isinstance(raw, dict):
        return ([("value", _text(raw))] if raw not in (None, "") else []), 0
    flat: list[tuple[str, Any]] = []
    _flatten(raw, "", 0, flat)
    fields = [(key, value) for key, value in flat if key not in _NOISE]
    rank = {key: index for index, key in enumerate(_FIRST)}
    fields.sort(key=lambda pair: rank.get(pair[0], len(rank)))  # stable: the rest keep their order
    shown = [(key, _text(value)) for key, value in fields[:limit]]
    return shown, max(0, len(fields) - limit)
