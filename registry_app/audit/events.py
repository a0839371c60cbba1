"""CloudTrail records → what the dashboard keeps: relevance, normalisation, linking keys, actors.

Pure: no ORM, no boto3, no clock. The ingest service (``registry_app.audit.ingest``)
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
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

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


# The keys the normaliser reads, as CloudTrail spells them, plus the other keys CloudTrail writes
# at the levels it reads: a map whose keys are all among these (one spelling per case-folded name)
# is read as it is, with no copy; any other spelling goes through ``_lc``'s re-keyed copy.
_READ_KEYS = (
    "eventName", "eventSource", "userIdentity", "requestParameters", "responseElements", "readOnly",
    "eventID", "awsRegion", "recipientAccountId", "eventTime", "errorCode", "additionalEventData",
    "type", "arn", "sessionContext", "userName", "invokedBy", "onBehalfOf", "principalId", "accountId",
    "sourceIdentity", "sessionIssuer", "userId", "modelPackageArn", "modelPackageName",
    "modelPackageGroupName", "modelPackageGroupArn", "modelCardName", "modelCardArn", "primaryContainer",
    "containers", "modelName", "modelArn", "endpointConfigName", "endpointConfigArn", "endpointName",
    "endpointArn", "roleArn",
)  # fmt: skip
_OTHER_KEYS = (
    "eventVersion", "sourceIPAddress", "userAgent", "requestID", "eventType", "managementEvent",
    "eventCategory", "errorMessage", "resources", "apiVersion", "sharedEventID", "vpcEndpointId",
    "vpcEndpointAccountId", "serviceEventDetails", "tlsDetails", "sessionCredentialFromConsole",
    "insightDetails", "edgeDeviceDetails", "addendum", "accessKeyId", "webIdFederationData",
    "attributes", "identityStoreArn", "credentialId", "inScopeOf", "identityProvider",
    "modelApprovalStatus", "approvalDescription", "modelPackageDescription", "inferenceSpecification",
    "customerMetadataProperties", "modelCardStatus", "content", "resourcePolicy",
    "productionVariants", "executionRoleArn", "tags", "roleSessionName", "durationSeconds",
    "credentials", "assumedRoleUser", "packedPolicySize", "modelMetrics", "metadataProperties",
    "certifyForMarketplace", "clientToken", "modelPackageVersion", "modelCardVersion",
    "modelPackageGroupDescription", "vpcConfig", "enableNetworkIsolation", "kmsKeyId",
    "dataCaptureConfig", "retainAllVariantProperties", "deploymentConfig", "image", "modelDataUrl",
    "environment", "variantName", "initialInstanceCount", "instanceType",
)  # fmt: skip
_SPELLING = {key.lower(): key for key in (*_OTHER_KEYS, *_READ_KEYS)}
_AS_IS = frozenset(_SPELLING.values())  # one spelling per case-folded name, by construction


def _lc(value: Any) -> dict[str, Any]:
    """``value`` with its keys in the spelling the normaliser reads ({} for a non-dict).

    When every key is already one of those spellings (every record CloudTrail writes) that is
    ``value`` itself: a C-level subset test, no copy. Otherwise a copy whose keys are re-spelt
    through their lower-case form (the last of several spellings wins; unknown keys are
    lower-cased), so ``ModelPackageArn`` and ``MODELPACKAGEARN`` read as ``modelPackageArn``.
    User maps (``customerMetadataProperties``...) are never re-keyed, only looked into.
    """
    if not isinstance(value, dict):
        return {}
    if value.keys() <= _AS_IS:
        return value
    spelling = _SPELLING
    out: dict[Any, Any] = {}
    for key, item in value.items():
        if isinstance(key, str):
            lowered = key.lower()
            key = spelling.get(lowered, lowered)
        out[key] = item
    return out


def _s(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


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
    return _relevant(_lc(record))


def _relevant(top: dict[str, Any]) -> bool:
    raw_name = _s(top.get("eventName"))
    name = canonical_event_name(raw_name)
    source = _s(top.get("eventSource")).lower()
    if name == ASSUME_ROLE:
        if source not in ("", STS):
            return False
        identity = _lc(top.get("userIdentity"))
        if _s(_lc(top.get("requestParameters")).get("sourceIdentity")):
            return True
        return bool(identity) and _s(identity.get("type")) != "AWSService"
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


def _assumed_role_parts(identity: dict[str, Any], context: dict[str, Any]) -> tuple[str, str]:
    """(role name, session name) of an assumed-role identity (both maps key-lowered)."""
    arn = _s(identity.get("arn"))
    role = session = ""
    if ":assumed-role/" in arn:
        tail = arn.split(":assumed-role/", 1)[1]
        role, _, session = tail.partition("/")
    role = _s(_lc(context.get("sessionIssuer")).get("userName")) or role
    if not session:
        principal = _s(identity.get("principalId"))
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
    return _actor(_lc(identity), record)


def _actor(identity: dict[str, Any], record: Any) -> Actor:
    kind = _s(identity.get("type"))
    arn = _s(identity.get("arn"))
    context = _lc(identity.get("sessionContext"))
    source_identity = _s(context.get("sourceIdentity"))
    user_name = _s(identity.get("userName"))
    invoked_by = _s(identity.get("invokedBy"))
    on_behalf = _lc(identity.get("onBehalfOf"))
    name = ""
    candidates: tuple[str, ...] = ()

    if kind == "AssumedRole" or ":assumed-role/" in arn:
        role, session = _assumed_role_parts(identity, context)
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
        extra = _lc(ci_get(record, "additionalEventData"))
        sso_name = user_name or _s(on_behalf.get("userName")) or _s(extra.get("userName"))
        user_id = _s(on_behalf.get("userId"))
        name = source_identity or sso_name or (f"idc:{user_id}" if user_id else "identity-center-user")
        candidates = _unique_lower(source_identity) if source_identity else _unique_lower(sso_name)
    elif kind == "IAMUser":
        name = user_name or arn.rsplit("/", 1)[-1]
        candidates = _unique_lower(source_identity) if source_identity else _unique_lower(name)
    elif kind == "Root":
        name = "root"
    elif kind == "AWSService":
        name = invoked_by or _s(identity.get("principalId")) or "aws-service"
    elif kind == "FederatedUser":
        name = arn.rsplit("/", 1)[-1] if ":federated-user/" in arn else _s(identity.get("principalId"))
        candidates = _unique_lower(name)
    else:  # SAMLUser, WebIdentityUser, Directory, AWSAccount, Unknown, future types
        name = source_identity or user_name or _s(identity.get("principalId")) or arn or invoked_by
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
        resp.get("modelPackageArn") or req.get("modelPackageArn") or req.get("modelPackageName"),
        region=region,
        account=account,
    )
    group = name_or_arn(_s(req.get("modelPackageGroupName")), "model-package-group") or ref.group
    if ref.name:
        return Link(PACKAGE, (ref.arn or ref.name)[:MAX_RESOURCE], package=ref, group_name=group)
    if group:  # e.g. a failed CreateModelPackage: no ARN came back, but the group is known
        return Link(GROUP, group[:MAX_RESOURCE], group_name=group)
    return Link()


def _group_link(req: dict[str, Any], resp: dict[str, Any]) -> Link:
    group = name_or_arn(_s(req.get("modelPackageGroupName")), "model-package-group") or arn_resource(
        _s(resp.get("modelPackageGroupArn")), "model-package-group"
    )
    return Link(GROUP, group[:MAX_RESOURCE], group_name=group) if group else Link()


def _card_link(req: dict[str, Any], resp: dict[str, Any]) -> Link:
    card = name_or_arn(_s(req.get("modelCardName")), "model-card") or arn_resource(
        _s(resp.get("modelCardArn")), "model-card"
    )
    return Link(CARD, card[:MAX_RESOURCE], card_name=card) if card else Link()


def model_package_names(request: Any) -> list[str]:
    """``modelPackageName`` of a CreateModel's ``primaryContainer`` and ``containers[]``, in order."""
    req = _lc(request)
    containers = [req.get("primaryContainer"), *_list(req.get("containers"))]
    names = []
    for container in containers:
        value = _s(_lc(container).get("modelPackageName"))
        if value and value not in names:
            names.append(value)
    return names


def _model_link(req: dict[str, Any], resp: dict[str, Any], region: str, account: str) -> Link:
    model = _s(req.get("modelName")) or arn_resource(_s(resp.get("modelArn")), "model")
    refs = [package_ref(n, region=region, account=account) for n in model_package_names(req)]
    ref = next((r for r in refs if r.name), PackageRef())
    if not model:
        return Link()
    return Link(MODEL, model[:MAX_RESOURCE], package=ref, group_name=ref.group, model_name=model)


def _config_link(req: dict[str, Any], resp: dict[str, Any]) -> Link:
    config = _s(req.get("endpointConfigName")) or arn_resource(_s(resp.get("endpointConfigArn")), "endpoint-config")
    return Link(ENDPOINT_CONFIG, config[:MAX_RESOURCE], config_name=config) if config else Link()


def _endpoint_link(req: dict[str, Any], resp: dict[str, Any]) -> Link:
    # The ARN lower-cases the name, so the request's spelling wins.
    endpoint = _s(req.get("endpointName")) or arn_resource(_s(resp.get("endpointArn")), "endpoint")
    if not endpoint:
        return Link()
    return Link(
        ENDPOINT,
        endpoint[:MAX_RESOURCE],
        endpoint_name=endpoint[:MAX_ENDPOINT],
        config_name=_s(req.get("endpointConfigName")),
    )


def link_of(event_name: str, request: Any, response: Any, *, region: str = "", account: str = "") -> Link:
    """The resource an event concerns (``Link()``, i.e. unlinked, when it cannot be told)."""
    req, resp = _lc(request), _lc(response)
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
        role = _s(req.get("roleArn"))
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
    return _normalize(_lc(record), record, fallback_time)


def normalize_if_relevant(record: Any, *, fallback_time: dt.datetime) -> NormalizedEvent | None:
    """``normalize(record)`` when ``is_relevant(record)``, else None (keys lowered once for both)."""
    if not isinstance(record, dict):
        return None
    top = _lc(record)
    return _normalize(top, record, fallback_time) if _relevant(top) else None


def _normalize(top: dict[str, Any], record: dict[str, Any], fallback_time: dt.datetime) -> NormalizedEvent:
    return NormalizedEvent(*_fields(top, record, fallback_time), raw=record)


_Fields = tuple[str, dt.datetime, str, str, str, str, bool | None, str, Actor, Link]


def _fields(top: dict[str, Any], record: dict[str, Any], fallback_time: dt.datetime) -> _Fields:
    """``NormalizedEvent``'s fields but ``raw``, in order (the ingest flattens them without the object)."""
    raw_name = _s(top.get("eventName"))
    name = canonical_event_name(raw_name) or raw_name
    event_id = _s(top.get("eventID"))[:MAX_ID] or synthetic_event_id(record)
    identity = _lc(top.get("userIdentity"))
    region = _s(top.get("awsRegion"))
    account = _s(top.get("recipientAccountId")) or _s(identity.get("accountId"))
    link = link_of(name, top.get("requestParameters"), top.get("responseElements"), region=region, account=account)
    return (
        event_id,
        parse_event_time(top.get("eventTime")) or fallback_time,
        (name or "(no eventName)")[:128],
        _s(top.get("eventSource"))[:128],
        region[:32],
        account[:12],
        _read_only(top),
        _s(top.get("errorCode"))[:256],
        _actor(identity, record),
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
        top = _lc(record)
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


_RECORDS_OPEN = re.compile(r'\s*\{\s*"Records"\s*:\s*\[\s*')
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def parse_log_file_texts(body: bytes) -> list[tuple[dict[str, Any], str]]:
    """Like ``parse_log_file``, with each record's own JSON text: ``[(record, text), ...]``.

    Walks the ``Records`` array with ``raw_decode`` (the same C scanner as ``json.loads``), so the
    text of each record is a slice of the file, not a re-serialisation. Anything but the plain
    ``{"Records": [...]}`` layout falls back to ``parse_log_file`` (texts re-serialised).
    """
    text = _decompress(body).decode("utf-8", "strict") if body else ""
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


def _decompress(body: bytes) -> bytes:
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
