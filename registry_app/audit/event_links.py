"""What a CloudTrail call concerns: ARNs and names parsed into link keys (package, group, card, model,
endpoint config, endpoint, role) that the ingest resolves against the mirror. Pure.

An unknown event name, a missing field or a field of the wrong type yields ``Link()`` (unlinked),
never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from registry_app.audit.event_keys import (
    ASSUME_ROLE,
    CARD,
    CARD_EVENTS,
    CONFIG_EVENTS,
    ENDPOINT,
    ENDPOINT_CONFIG,
    ENDPOINT_EVENTS,
    GROUP,
    GROUP_EVENTS,
    MAX_ENDPOINT,
    MAX_RESOURCE,
    MODEL,
    MODEL_EVENTS,
    PACKAGE,
    PACKAGE_EVENTS,
    ROLE,
    UNLINKED,
    as_list,
    as_str,
    lc,
)

__all__ = [
    "Link",
    "PackageRef",
    "arn_resource",
    "link_of",
    "model_package_names",
    "name_or_arn",
    "package_ref",
    "partition_for",
]


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
    group = name_or_arn(as_str(req.get("modelPackageGroupName")), "model-package-group") or ref.group
    if ref.name:
        return Link(PACKAGE, (ref.arn or ref.name)[:MAX_RESOURCE], package=ref, group_name=group)
    if group:  # e.g. a failed CreateModelPackage: no ARN came back, but the group is known
        return Link(GROUP, group[:MAX_RESOURCE], group_name=group)
    return Link()


def _group_link(req: dict[str, Any], resp: dict[str, Any]) -> Link:
    group = name_or_arn(as_str(req.get("modelPackageGroupName")), "model-package-group") or arn_resource(
        as_str(resp.get("modelPackageGroupArn")), "model-package-group"
    )
    return Link(GROUP, group[:MAX_RESOURCE], group_name=group) if group else Link()


def _card_link(req: dict[str, Any], resp: dict[str, Any]) -> Link:
    card = name_or_arn(as_str(req.get("modelCardName")), "model-card") or arn_resource(
        as_str(resp.get("modelCardArn")), "model-card"
    )
    return Link(CARD, card[:MAX_RESOURCE], card_name=card) if card else Link()


def model_package_names(request: Any) -> list[str]:
    """``modelPackageName`` of a CreateModel's ``primaryContainer`` and ``containers[]``, in order."""
    req = lc(request)
    containers = [req.get("primaryContainer"), *as_list(req.get("containers"))]
    names = []
    for container in containers:
        value = as_str(lc(container).get("modelPackageName"))
        if value and value not in names:
            names.append(value)
    return names


def _model_link(req: dict[str, Any], resp: dict[str, Any], region: str, account: str) -> Link:
    model = as_str(req.get("modelName")) or arn_resource(as_str(resp.get("modelArn")), "model")
    refs = [package_ref(n, region=region, account=account) for n in model_package_names(req)]
    ref = next((r for r in refs if r.name), PackageRef())
    if not model:
        return Link()
    return Link(MODEL, model[:MAX_RESOURCE], package=ref, group_name=ref.group, model_name=model)


def _config_link(req: dict[str, Any], resp: dict[str, Any]) -> Link:
    config = as_str(req.get("endpointConfigName")) or arn_resource(
        as_str(resp.get("endpointConfigArn")), "endpoint-config"
    )
    return Link(ENDPOINT_CONFIG, config[:MAX_RESOURCE], config_name=config) if config else Link()


def _endpoint_link(req: dict[str, Any], resp: dict[str, Any]) -> Link:
    # The ARN lower-cases the name, so the request's spelling wins.
    endpoint = as_str(req.get("endpointName")) or arn_resource(as_str(resp.get("endpointArn")), "endpoint")
    if not endpoint:
        return Link()
    return Link(
        ENDPOINT,
        endpoint[:MAX_RESOURCE],
        endpoint_name=endpoint[:MAX_ENDPOINT],
        config_name=as_str(req.get("endpointConfigName")),
    )


def link_of(event_name: str, request: Any, response: Any, *, region: str = "", account: str = "") -> Link:
    """The resource an event concerns (``Link()``, i.e. unlinked, when it cannot be told)."""
    req, resp = lc(request), lc(response)
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
        role = as_str(req.get("roleArn"))
        return Link(ROLE, role[:MAX_RESOURCE]) if role else Link()
    return Link()
