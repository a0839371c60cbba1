"""CloudTrail records → what the dashboard keeps: relevance, normalisation, linking keys, actors.

Pure: no ORM, no boto3, no clock. The ingest service (``registry_app.services.cloudtrail_ingest``)
feeds it records from LookupEvents (``CloudTrailEvent`` parsed from its JSON string) and from the
trail's S3 files (``{"Records": [...]}``, gzip), and maps the result onto ``CloudTrailEvent`` rows.

Rules (docs: shared/aws-formats.md §2):

* SageMaker ``requestParameters`` / ``responseElements`` keys are lowerCamelCase, the API's are
  PascalCase, and hand-made or future records may use either: every key is looked up
  case-insensitively (exact key first, then PascalCase, then a case-folded scan).
* Nothing here raises on a strange record. An unknown event name, a missing field or a field of
  the wrong type yields an event with ``resource_type == ""`` (shown as unlinked); a record without
  ``eventID`` gets a stable synthetic id (a hash of its content), so copies still de-duplicate.
* Actor: ``sessionContext.sourceIdentity`` wins (Studio user profiles, the dashboard's own pushes),
  then the IAM Identity Center user (``AWSReservedSSO_*`` role sessions, ``IdentityCenterUser``),
  the IAM user name, the assumed-role session name (qualified by the role when the session name is
  a generic one such as ``SageMaker``), and service principals (``invokedBy``).
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

SAGEMAKER = "sagemaker.amazonaws.com"
STS = "sts.amazonaws.com"

PACKAGE_EVENTS = frozenset({"CreateModelPackage", "UpdateModelPackage", "DeleteModelPackage"})
GROUP_EVENTS = frozenset(
    {
        "CreateModelPackageGroup",
        "DeleteModelPackageGroup",
        "PutModelPackageGroupPolicy",
        "DeleteModelPackageGroupPolicy",
    }
)
CARD_EVENTS = frozenset({"CreateModelCard", "UpdateModelCard", "DeleteModelCard"})
MODEL_EVENTS = frozenset({"CreateModel", "DeleteModel"})
CONFIG_EVENTS = frozenset({"CreateEndpointConfig", "DeleteEndpointConfig"})
ENDPOINT_EVENTS = frozenset(
    {"CreateEndpoint", "UpdateEndpoint", "DeleteEndpoint", "UpdateEndpointWeightsAndCapacities"}
)
SAGEMAKER_EVENTS = PACKAGE_EVENTS | GROUP_EVENTS | CARD_EVENTS | MODEL_EVENTS | CONFIG_EVENTS | ENDPOINT_EVENTS
ASSUME_ROLE = "AssumeRole"
RELEVANT_EVENTS = SAGEMAKER_EVENTS | {ASSUME_ROLE}
_CANONICAL = {name.lower(): name for name in RELEVANT_EVENTS}
# SageMaker writes we do not know by name but keep (unlinked) because they touch governed resources.
_GOVERNED_WORDS = ("modelpackage", "modelcard")
_READ_PREFIXES = ("describe", "list", "search", "get", "query", "batchdescribe", "batchget")

# CloudTrailEvent.ResourceType values (kept as plain strings: this module imports no models).
PACKAGE = "package"
GROUP = "group"
CARD = "card"
MODEL = "model"
ENDPOINT_CONFIG = "endpoint_config"
ENDPOINT = "endpoint"
ROLE = "role"
UNLINKED = ""

# Session names that say nothing about who acted: qualify them with the role name.
_GENERIC_SESSION = re.compile(
    r"^(sagemaker|sagemaker-pipelines?|botocore-session-\d+|aws-sdk-\w+-\d+|aws-go-sdk-\d+|\d+|i-[0-9a-f]+"
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,})$",
    re.IGNORECASE,
)
SSO_ROLE_PREFIX = "AWSReservedSSO_"

MAX_ID = 128
MAX_NAME = 256
MAX_RESOURCE = 2048
MAX_ENDPOINT = 63


class LogFileError(ValueError):
    """A trail log file that is not gzip'd ``{"Records": [...]}`` JSON."""


# --------------------------------------------------------------------------------------------- lookups


def ci_get(mapping: Any, *keys: str) -> Any:
    """``mapping[key]`` for the first key present, matching case-insensitively; None otherwise.

    Tries each key exactly, then with its first letter upper-cased (lowerCamel → PascalCase), then
    a case-folded scan, so ``modelPackageArn``, ``ModelPackageArn`` and ``MODELPACKAGEARN`` all match.
    """
    if not isinstance(mapping, dict):
        return None
    for key in keys:
        value = mapping.get(key)
        if value is not None:
            return value
        value = mapping.get(key[:1].upper() + key[1:])
        if value is not None:
            return value
    wanted = {key.lower() for key in keys}
    for key, value in mapping.items():
        if value is not None and isinstance(key, str) and key.lower() in wanted:
            return value
    return None


def ci_str(mapping: Any, *keys: str) -> str:
    value = ci_get(mapping, *keys)
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# --------------------------------------------------------------------------------------------- relevance


def canonical_event_name(name: Any) -> str:
    """The documented spelling of a relevant event name (``updatemodelpackage`` → ``UpdateModelPackage``)."""
    return _CANONICAL.get(str(name or "").lower(), "")


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
    raw_name = ci_str(record, "eventName")
    name = canonical_event_name(raw_name)
    source = ci_str(record, "eventSource").lower()
    if name == ASSUME_ROLE:
        if source not in ("", STS):
            return False
        identity = _dict(ci_get(record, "userIdentity"))
        if ci_str(ci_get(record, "requestParameters"), "sourceIdentity"):
            return True
        return bool(identity) and ci_str(identity, "type") != "AWSService"
    if name:
        return source in ("", SAGEMAKER)
    if source != SAGEMAKER:
        return False
    lowered = raw_name.lower()
    if lowered.startswith(_READ_PREFIXES) or _read_only(record) is not False:
        return False
    return any(word in lowered for word in _GOVERNED_WORDS)


def _read_only(record: dict[str, Any]) -> bool | None:
    value = ci_get(record, "readOnly")
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


# --------------------------------------------------------------------------------------------- ARNs and names


@dataclass(frozen=True)
class PackageRef:
    """A model package named by ARN or ``group/version`` (``arn`` built from region + account)."""

    arn: str = ""
    group: str = ""
    version: int | None = None
    name: str = ""  # as written in the record


def partition_for(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def arn_resource(value: str, kind: str) -> str:
    """The resource part after ``<kind>/`` of a SageMaker ARN, or "" when ``value`` is not such an ARN."""
    if not value.startswith("arn:"):
        return ""
    parts = value.split(":", 5)
    if len(parts) != 6:
        return ""
    resource_type, _, resource = parts[5].partition("/")
    return resource if resource_type == kind and resource else ""


def name_or_arn(value: str, kind: str) -> str:
    """A resource name from a ``Name`` parameter that accepts a name or an ARN."""
    if value.startswith("arn:"):
        return arn_resource(value, kind)
    return value


def package_ref(value: Any, *, region: str = "", account: str = "") -> PackageRef:
    """Parse ``arn:...:model-package/<group>/<version>``, ``<group>/<version>`` or a plain name."""
    text = str(value or "").strip() if not isinstance(value, dict | list) else ""
    if not text:
        return PackageRef()
    if text.startswith("arn:"):
        resource = arn_resource(text, "model-package")
        if not resource:
            return PackageRef(name=text)
        group, _, version = resource.rpartition("/")
        if group and version.isdigit():
            return PackageRef(arn=text, group=group, version=int(version), name=text)
        return PackageRef(arn=text, name=text)  # an unversioned package ARN
    group, _, version = text.rpartition("/")
    if group and version.isdigit() and "/" not in group:
        arn = ""
        if region and account:
            arn = f"arn:{partition_for(region)}:sagemaker:{region}:{account}:model-package/{group}/{version}"
        return PackageRef(arn=arn, group=group, version=int(version), name=text)
    return PackageRef(name=text)


# --------------------------------------------------------------------------------------------- actors


@dataclass(frozen=True)
class Actor:
    type: str = ""
    arn: str = ""
    name: str = ""
    # Lower-cased names to match against dashboard usernames, best first.
    candidates: tuple[str, ...] = ()


def _assumed_role_parts(identity: dict[str, Any]) -> tuple[str, str]:
    """(role name, session name) of an assumed-role identity."""
    arn = ci_str(identity, "arn")
    role = session = ""
    if ":assumed-role/" in arn:
        tail = arn.split(":assumed-role/", 1)[1]
        role, _, session = tail.partition("/")
    issuer = _dict(ci_get(_dict(ci_get(identity, "sessionContext")), "sessionIssuer"))
    role = ci_str(issuer, "userName") or role
    if not session:
        principal = ci_str(identity, "principalId")
        if ":" in principal:
            session = principal.split(":", 1)[1]
    return role, session


def _unique_lower(*names: str) -> tuple[str, ...]:
    out: list[str] = []
    for name in names:
        lowered = name.strip().lower()
        if lowered and lowered not in out:
            out.append(lowered)
    return tuple(out)


def actor_of(identity: Any, record: Any = None) -> Actor:
    """A human-readable actor for a ``userIdentity`` element (see the module docstring)."""
    if not isinstance(identity, dict):
        return Actor()
    kind = ci_str(identity, "type")
    arn = ci_str(identity, "arn")
    context = _dict(ci_get(identity, "sessionContext"))
    source_identity = ci_str(context, "sourceIdentity")
    user_name = ci_str(identity, "userName")
    invoked_by = ci_str(identity, "invokedBy")
    on_behalf = _dict(ci_get(identity, "onBehalfOf"))
    name = ""
    candidates: tuple[str, ...] = ()

    if kind == "AssumedRole" or ":assumed-role/" in arn:
        role, session = _assumed_role_parts(identity)
        meaningful = role.startswith(SSO_ROLE_PREFIX) or not _GENERIC_SESSION.match(session or "x")
        if source_identity:
            name = source_identity
        elif meaningful:
            name = session or role
        else:
            name = f"{role}/{session}" if role else session
        # A generic session name ("SageMaker") must not match a dashboard login.
        candidates = _unique_lower(source_identity or (session if meaningful else ""))
    elif kind == "IdentityCenterUser" or on_behalf:
        extra = _dict(ci_get(record, "additionalEventData")) if isinstance(record, dict) else {}
        sso_name = user_name or ci_str(on_behalf, "userName") or ci_str(extra, "UserName")
        user_id = ci_str(on_behalf, "userId")
        name = source_identity or sso_name or (f"idc:{user_id}" if user_id else "identity-center-user")
        candidates = _unique_lower(source_identity) if source_identity else _unique_lower(sso_name)
    elif kind == "IAMUser":
        name = user_name or arn.rsplit("/", 1)[-1]
        candidates = _unique_lower(source_identity) if source_identity else _unique_lower(name)
    elif kind == "Root":
        name = "root"
    elif kind == "AWSService":
        name = invoked_by or ci_str(identity, "principalId") or "aws-service"
    elif kind == "FederatedUser":
        name = arn.rsplit("/", 1)[-1] if ":federated-user/" in arn else ci_str(identity, "principalId")
        candidates = _unique_lower(name)
    else:  # SAMLUser, WebIdentityUser, Directory, AWSAccount, Unknown, future types
        name = source_identity or user_name or ci_str(identity, "principalId") or arn or invoked_by
        candidates = _unique_lower(source_identity or user_name)
    if not name and invoked_by:
        name = invoked_by
    return Actor(type=kind[:32], arn=arn[:MAX_RESOURCE], name=name[:MAX_NAME], candidates=candidates)


# --------------------------------------------------------------------------------------------- resources


@dataclass(frozen=True)
class Link:
    """What an event concerns, as keys the service resolves against the mirror."""

    resource_type: str = UNLINKED
    resource_name: str = ""
    package: PackageRef = field(default_factory=PackageRef)
    group_name: str = ""
    card_name: str = ""
    endpoint_name: str = ""
    model_name: str = ""
    config_name: str = ""


def _package_link(req: dict[str, Any], resp: dict[str, Any], region: str, account: str) -> Link:
    ref = package_ref(
        ci_get(resp, "modelPackageArn") or ci_get(req, "modelPackageArn") or ci_get(req, "modelPackageName"),
        region=region,
        account=account,
    )
    group = name_or_arn(ci_str(req, "modelPackageGroupName"), "model-package-group") or ref.group
    if ref.name:
        return Link(PACKAGE, (ref.arn or ref.name)[:MAX_RESOURCE], package=ref, group_name=group)
    if group:  # e.g. a failed CreateModelPackage: no ARN came back, but the group is known
        return Link(GROUP, group[:MAX_RESOURCE], group_name=group)
    return Link()


def _group_link(req: dict[str, Any], resp: dict[str, Any]) -> Link:
    group = name_or_arn(ci_str(req, "modelPackageGroupName"), "model-package-group") or arn_resource(
        ci_str(resp, "modelPackageGroupArn"), "model-package-group"
    )
    return Link(GROUP, group[:MAX_RESOURCE], group_name=group) if group else Link()


def _card_link(req: dict[str, Any], resp: dict[str, Any]) -> Link:
    card = name_or_arn(ci_str(req, "modelCardName"), "model-card") or arn_resource(
        ci_str(resp, "modelCardArn"), "model-card"
    )
    return Link(CARD, card[:MAX_RESOURCE], card_name=card) if card else Link()


def model_package_names(request: Any) -> list[str]:
    """``modelPackageName`` of a CreateModel's ``primaryContainer`` and ``containers[]``, in order."""
    req = _dict(request)
    containers = [ci_get(req, "primaryContainer"), *_list(ci_get(req, "containers"))]
    names = []
    for container in containers:
        value = ci_str(container, "modelPackageName")
        if value and value not in names:
            names.append(value)
    return names


def _model_link(req: dict[str, Any], resp: dict[str, Any], region: str, account: str) -> Link:
    model = ci_str(req, "modelName") or arn_resource(ci_str(resp, "modelArn"), "model")
    refs = [package_ref(n, region=region, account=account) for n in model_package_names(req)]
    ref = next((r for r in refs if r.name), PackageRef())
    if not model:
        return Link()
    return Link(MODEL, model[:MAX_RESOURCE], package=ref, group_name=ref.group, model_name=model)


def _config_link(req: dict[str, Any], resp: dict[str, Any]) -> Link:
    config = ci_str(req, "endpointConfigName") or arn_resource(ci_str(resp, "endpointConfigArn"), "endpoint-config")
    return Link(ENDPOINT_CONFIG, config[:MAX_RESOURCE], config_name=config) if config else Link()


def _endpoint_link(req: dict[str, Any], resp: dict[str, Any]) -> Link:
    # The ARN lower-cases the name, so the request's spelling wins.
    endpoint = ci_str(req, "endpointName") or arn_resource(ci_str(resp, "endpointArn"), "endpoint")
    if not endpoint:
        return Link()
    return Link(
        ENDPOINT,
        endpoint[:MAX_RESOURCE],
        endpoint_name=endpoint[:MAX_ENDPOINT],
        config_name=ci_str(req, "endpointConfigName"),
    )


def link_of(event_name: str, request: Any, response: Any, *, region: str = "", account: str = "") -> Link:
    """The resource an event concerns (``Link()``, i.e. unlinked, when it cannot be told)."""
    req, resp = _dict(request), _dict(response)
    if event_name in PACKAGE_EVENTS:
        return _package_link(req, resp, region, account)
    if event_name in GROUP_EVENTS:
        return _group_link(req, resp)
    if event_name in CARD_EVENTS:
        return _card_link(req, resp)
    if event_name in MODEL_EVENTS:
        return _model_link(req, resp, region, account)
    if event_name in CONFIG_EVENTS:
        return _config_link(req, resp)
    if event_name in ENDPOINT_EVENTS:
        return _endpoint_link(req, resp)
    if event_name == ASSUME_ROLE:
        role = ci_str(req, "roleArn")
        return Link(ROLE, role[:MAX_RESOURCE]) if role else Link()
    return Link()


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
    raw_name = ci_str(record, "eventName")
    name = canonical_event_name(raw_name) or raw_name
    event_id = ci_str(record, "eventID", "eventId")[:MAX_ID] or synthetic_event_id(record)
    identity = ci_get(record, "userIdentity")
    region = ci_str(record, "awsRegion")
    account = ci_str(record, "recipientAccountId") or ci_str(_dict(identity), "accountId")
    link = link_of(
        name, ci_get(record, "requestParameters"), ci_get(record, "responseElements"), region=region, account=account
    )
    return NormalizedEvent(
        event_id=event_id,
        event_time=parse_event_time(ci_get(record, "eventTime")) or fallback_time,
        event_name=(name or "(no eventName)")[:128],
        event_source=ci_str(record, "eventSource")[:128],
        aws_region=region[:32],
        account_id=account[:12],
        read_only=_read_only(record),
        error_code=ci_str(record, "errorCode")[:256],
        actor=actor_of(identity, record),
        link=link,
        raw=record,
    )


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
