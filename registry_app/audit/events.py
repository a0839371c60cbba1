"""CloudTrail records → what the dashboard keeps: relevance, normalisation and the flat rows the ingest stores.

Pure: no ORM, no boto3, no clock. The ingest service (``registry_app.audit.ingest``)
feeds it records from LookupEvents (``CloudTrailEvent`` parsed from its JSON string) and from the
trail's S3 files (``{"Records": [...]}``, gzip; read by ``trail_files``), and maps the result onto
``CloudTrailEvent`` rows. Who acted: ``event_actors``; what the call concerns: ``event_links``;
the vocabulary and case-insensitive key access: ``event_keys``.

Rules (docs: shared/aws-formats.md §2):

* Keys are looked up case-insensitively (see ``event_keys``).
* Nothing here raises on a strange record. An unknown event name, a missing field or a field of
  the wrong type yields an event with ``resource_type == ""`` (shown as unlinked); a record without
  ``eventID`` gets a stable synthetic id (a hash of its content), so copies still de-duplicate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from registry_app.audit.event_actors import Actor, keyed_actor
from registry_app.audit.event_keys import ASSUME_ROLE, MAX_ID, SAGEMAKER, STS, as_str, canonical_event_name, lc
from registry_app.audit.event_links import Link, link_of
from registry_app.audit.trail_files import parse_log_file_texts

# SageMaker writes we do not know by name but keep (unlinked) because they touch governed resources.
_GOVERNED_WORDS = ("modelpackage", "modelcard")
_READ_PREFIXES = ("describe", "list", "search", "get", "query", "batchdescribe", "batchget")


# --------------------------------------------------------------------------------------------- relevance


def is_relevant(record: Any) -> bool:
    """Whether the dashboard keeps this record.

    * the SageMaker calls that change governance state (``SAGEMAKER_EVENTS``), in any casing, when
      ``eventSource`` is SageMaker or missing (other services have ``CreateEndpoint`` too);
    * other SageMaker *writes* whose name mentions model packages or cards (kept unlinked);
    * ``sts:AssumeRole`` when a person (not an AWS service) assumed the role, or the call set a
      ``sourceIdentity``: the evidence that ties a session to a human. Service-made AssumeRole calls
      (Lambda, EC2 instance profiles, SageMaker jobs...) are the bulk of STS traffic and are dropped.
    """
    if not isinstance(record, dict):
        return False
    return _relevant(lc(record))


def _relevant(top: dict[str, Any]) -> bool:
    raw_name = as_str(top.get("eventName"))
    name = canonical_event_name(raw_name)
    source = as_str(top.get("eventSource")).lower()
    if name == ASSUME_ROLE:
        if source not in ("", STS):
            return False
        identity = lc(top.get("userIdentity"))
        if as_str(lc(top.get("requestParameters")).get("sourceIdentity")):
            return True
        return bool(identity) and as_str(identity.get("type")) != "AWSService"
    if name:
        return source in ("", SAGEMAKER)
    if source != SAGEMAKER:
        return False
    lowered = raw_name.lower()
    if lowered.startswith(_READ_PREFIXES) or _read_only(top) is not False:
        return False
    return any(word in lowered for word in _GOVERNED_WORDS)


def _read_only(top: dict[str, Any]) -> bool | None:
    value = top.get("readOnly")
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


# --------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class NormalizedEvent:
    event_id: str
    event_time: dt.datetime
    event_name: str
    event_source: str
    aws_region: str
    account_id: str
    read_only: bool | None
    error_code: str
    actor: Actor
    link: Link
    raw: dict[str, Any]


def parse_event_time(value: Any) -> dt.datetime | None:
    """CloudTrail's ``2018-01-02T13:39:06Z`` (and other ISO forms, epoch seconds) → aware UTC."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        if "." in text:  # more than microsecond precision
            head, _, tail = text.partition(".")
            digits = "".join(ch for ch in tail if ch.isdigit())
            try:
                parsed = dt.datetime.fromisoformat(f"{head}.{digits[:6]}{tail[len(digits) :]}")
            except ValueError:
                return None
        else:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def synthetic_event_id(record: Any) -> str:
    """A stable id for a record that lacks ``eventID`` (identical copies share it)."""
    digest = hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()
    return f"synthetic-{digest[:48]}"


def normalize(record: dict[str, Any], *, fallback_time: dt.datetime) -> NormalizedEvent:
    """One record → the fields of a ``CloudTrailEvent`` row. Never raises on odd content.

    ``fallback_time`` is used when ``eventTime`` is missing or unparseable (the LookupEvents
    ``EventTime`` or the S3 file's delivery time is the best the caller knows).
    """
    return _normalize(lc(record), record, fallback_time)


def normalize_if_relevant(record: Any, *, fallback_time: dt.datetime) -> NormalizedEvent | None:
    """``normalize(record)`` when ``is_relevant(record)``, else None (keys lowered once for both)."""
    if not isinstance(record, dict):
        return None
    top = lc(record)
    return _normalize(top, record, fallback_time) if _relevant(top) else None


def _normalize(top: dict[str, Any], record: dict[str, Any], fallback_time: dt.datetime) -> NormalizedEvent:
    return NormalizedEvent(*_fields(top, record, fallback_time), raw=record)


_Fields = tuple[str, dt.datetime, str, str, str, str, bool | None, str, Actor, Link]


def _fields(top: dict[str, Any], record: dict[str, Any], fallback_time: dt.datetime) -> _Fields:
    """``NormalizedEvent``'s fields but ``raw``, in order (the ingest flattens them without the object)."""
    raw_name = as_str(top.get("eventName"))
    name = canonical_event_name(raw_name) or raw_name
    event_id = as_str(top.get("eventID"))[:MAX_ID] or synthetic_event_id(record)
    identity = lc(top.get("userIdentity"))
    region = as_str(top.get("awsRegion"))
    account = as_str(top.get("recipientAccountId")) or as_str(identity.get("accountId"))
    link = link_of(name, top.get("requestParameters"), top.get("responseElements"), region=region, account=account)
    return (
        event_id,
        parse_event_time(top.get("eventTime")) or fallback_time,
        (name or "(no eventName)")[:128],
        as_str(top.get("eventSource"))[:128],
        region[:32],
        account[:12],
        _read_only(top),
        as_str(top.get("errorCode"))[:256],
        keyed_actor(identity, record),
        link,
    )


class PreparedEvent(NamedTuple):
    """A relevant record flattened for storage: what the ingest writes, plus the keys it links by.

    Flat (a tuple) so that parsing can run in worker processes and cross back cheaply; ``raw_json``
    is the record serialised once, as the JSON column stores it.
    """

    event_id: str
    event_time: dt.datetime
    event_name: str
    event_source: str
    aws_region: str
    account_id: str
    read_only: bool | None
    error_code: str
    actor_type: str
    actor_arn: str
    actor_name: str
    candidates: tuple[str, ...]
    resource_type: str
    resource_name: str
    package_arn: str
    package_group: str
    package_version: int | None
    package_name: str
    group_name: str
    card_name: str
    endpoint_name: str
    model_name: str
    config_name: str
    raw_json: str


# A prepared event as the ingest's writer reads it: a ``PreparedEvent`` or the plain tuple of its fields
# that a parsing process sends back (a tuple unpickles at half the cost of a named tuple, on the
# thread that inserts), so the writer reads fields by position.
PreparedRow = tuple[Any, ...]


def prepare(event: NormalizedEvent, raw_json: str | None = None) -> PreparedEvent:
    """Flatten; ``raw_json`` is the record's own JSON text when the caller has it (else serialised)."""
    fields = (
        event.event_id,
        event.event_time,
        event.event_name,
        event.event_source,
        event.aws_region,
        event.account_id,
        event.read_only,
        event.error_code,
        event.actor,
        event.link,
    )
    return PreparedEvent._make(
        _flatten(fields, raw_json if raw_json is not None else json.dumps(event.raw, default=str))
    )


def _flatten(fields: _Fields, raw_json: str) -> tuple[Any, ...]:
    """``_fields`` (or a ``NormalizedEvent``'s) + the record's JSON → a ``PreparedEvent``'s fields, as a plain tuple."""
    actor, link = fields[8], fields[9]
    ref = link.package
    return (
        *fields[:8],
        actor.type,
        actor.arn,
        actor.name,
        actor.candidates,
        link.resource_type,
        link.resource_name,
        ref.arn,
        ref.group,
        ref.version,
        ref.name,
        link.group_name,
        link.card_name,
        link.endpoint_name,
        link.model_name,
        link.config_name,
        raw_json,
    )


def prepare_records(records: Iterable[Any], *, fallback_time: dt.datetime) -> tuple[int, list[PreparedEvent]]:
    """(records seen, the relevant ones prepared)."""
    seen = 0
    out = []
    for record in records:
        seen += 1
        event = normalize_if_relevant(record, fallback_time=fallback_time)
        if event is not None:
            out.append(prepare(event))
    return seen, out


def prepare_log_file(body: bytes, fallback_time: dt.datetime) -> tuple[int, list[PreparedEvent]]:
    """A trail log file's bytes → (records in it, relevant ones prepared).

    Each record keeps its own JSON text from the file (no second serialisation).
    """
    seen, rows = prepare_log_rows(body, fallback_time)
    return seen, [PreparedEvent._make(row) for row in rows]


def prepare_log_rows(body: bytes, fallback_time: dt.datetime) -> tuple[int, list[tuple[Any, ...]]]:
    """``prepare_log_file`` with each event as the plain tuple of its ``PreparedEvent`` fields.

    What the ingest's parsing processes run: no ``NormalizedEvent`` or named tuple per record, and
    plain tuples cross back to the inserting process at half the unpickling cost.
    """
    records = parse_log_file_texts(body)
    out = []
    for record, text in records:
        top = lc(record)
        if _relevant(top):
            out.append(_flatten(_fields(top, record, fallback_time), text))
    return len(records), out


def record_from_lookup_event(event: dict[str, Any]) -> dict[str, Any]:
    """The CloudTrail record inside a LookupEvents ``Event`` (its ``CloudTrailEvent`` JSON string).

    When that string is missing or not JSON, a minimal record is built from the outer fields so the
    event is still kept (with ``_unparsedCloudTrailEvent`` holding what came).
    """
    text = event.get("CloudTrailEvent")
    if isinstance(text, str):
        try:
            record = json.loads(text)
        except ValueError:
            record = None
        if isinstance(record, dict):
            if not record.get("eventID") and event.get("EventId"):
                record["eventID"] = event["EventId"]
            return record
    event_time = event.get("EventTime")
    record = {
        "eventID": event.get("EventId") or "",
        "eventName": event.get("EventName") or "",
        "eventSource": event.get("EventSource") or "",
        "eventTime": event_time.isoformat() if isinstance(event_time, dt.datetime) else event_time,
        "readOnly": event.get("ReadOnly"),
        "userIdentity": {"userName": event.get("Username") or ""},
        "_unparsedCloudTrailEvent": text if isinstance(text, str) else None,
    }
    return record
