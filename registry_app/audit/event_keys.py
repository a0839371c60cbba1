"""CloudTrail vocabulary and key lookups shared by the parsers (``events``, ``event_actors``,
``event_links``): the event names the dashboard keeps, resource kinds, column limits, and
case-insensitive access to a record's maps. Pure.

SageMaker ``requestParameters`` / ``responseElements`` keys are lowerCamelCase, the API's are
PascalCase, and hand-made or future records may use either: every key is looked up
case-insensitively (exact key first, then PascalCase, then a case-folded scan).
"""

from __future__ import annotations

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

# CloudTrailEvent.ResourceType values (kept as plain strings: this module imports no models).
PACKAGE = "package"
GROUP = "group"
CARD = "card"
MODEL = "model"
ENDPOINT_CONFIG = "endpoint_config"
ENDPOINT = "endpoint"
ROLE = "role"
UNLINKED = ""

MAX_ID = 128
MAX_NAME = 256
MAX_RESOURCE = 2048
MAX_ENDPOINT = 63


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


# The keys the normaliser reads, as CloudTrail spells them, plus the other keys CloudTrail writes
# at the levels it reads: a map whose keys are all among these (one spelling per case-folded name)
# is read as it is, with no copy; any other spelling goes through ``lc``'s re-keyed copy.
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


def lc(value: Any) -> dict[str, Any]:
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


def as_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def canonical_event_name(name: Any) -> str:
    """The documented spelling of a relevant event name (``updatemodelpackage`` → ``UpdateModelPackage``)."""
    return _CANONICAL.get(str(name or "").lower(), "")
