"""Which registry package a reference names: decided here once, for the endpoint sync and the deployment history.

A SageMaker Model names the package it was built from in ``ModelPackageName`` (DescribeModel's
``PrimaryContainer`` / ``Containers``; CloudTrail's ``createModel`` request). botocore's shape for it,
``VersionedArnOrName``, allows a package ARN, ``group/version`` or a bare name (an unversioned
package), and SageMaker treats names without regard to case. Package ARNs carry the group name in lower
case (group ``FraudModel`` → ``model-package/fraudmodel/3``), so references are compared on the
lower-cased ARN (``PackageRef.key``), never as written.

``mirror.endpoints`` (the current variants) and ``audit.deployments`` (the deployment windows) both
call ``resolve_package``, so the two never disagree about which package a variant serves. Pure: no
ORM, no AWS.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["PackageRef", "Resolution", "lookup_arns", "package_index", "package_ref", "resolve_package"]


@dataclass(frozen=True)
class PackageRef:
    """A package reference, parsed. ``arn`` is "" when the reference is neither an ARN nor buildable
    into one (a name without the region and account to qualify it, or not a package reference)."""

    written: str = ""
    arn: str = ""
    group: str = ""
    version: int | None = None

    @property
    def key(self) -> str:
        """What mirrored ARNs are compared on (ARNs differ in case between callers, never in meaning)."""
        return self.arn.lower()


@dataclass(frozen=True)
class Resolution:
    """What a reference resolves to: the ARN to show and store (the mirror's spelling when the package is
    mirrored, else the reference's ARN, else the reference as written) and the mirrored package's id."""

    arn: str
    package_id: int | None


def partition_for(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def package_ref(value: Any, *, region: str = "", account: str = "") -> PackageRef:
    """Parse ``arn:...:model-package/<group>/<version>`` (any case), ``<group>/<version>`` or a bare name.

    A name is qualified with ``region`` and ``account`` (the Model's own: a name can only reach a package
    of the same account and region); without them it has no ARN.
    """
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        return PackageRef()
    if text[:4].lower() == "arn:":
        parts = text.split(":", 5)
        if len(parts) == 6 and parts[2].lower() == "sagemaker":
            resource_type, _, resource = parts[5].partition("/")
            if resource_type.lower() == "model-package" and resource:
                group, _, version = resource.rpartition("/")
                if group and version.isdigit():
                    return PackageRef(text, text, group, int(version))
                return PackageRef(text, text)  # an unversioned package's ARN
        return PackageRef(written=text)  # the ARN of something else
    name, slash, version = text.rpartition("/")
    if slash and name and "/" not in name and version.isdigit():
        group, number, resource = name, int(version), f"{name.lower()}/{int(version)}"
    elif not slash:
        group, number, resource = "", None, text.lower()  # a bare (unversioned) package name
    else:
        return PackageRef(written=text)
    arn = f"arn:{partition_for(region)}:sagemaker:{region}:{account}:model-package/{resource}"
    return PackageRef(text, arn if region and account else "", group, number)


def lookup_arns(refs: Iterable[PackageRef]) -> list[str]:
    """The spellings to look mirrored packages up by (an indexed ``arn__in``): as written and lower-cased,
    which covers the lower-case ARNs AWS returns whatever case the reference used."""
    return sorted({spelling for ref in refs if ref.arn for spelling in (ref.arn, ref.key)})


def package_index(rows: Iterable[tuple[int, str]]) -> dict[str, tuple[int, str]]:
    """Mirrored packages by lower-cased ARN, from ``(id, arn)`` rows."""
    return {arn.lower(): (pk, arn) for pk, arn in rows}


def resolve_package(
    value: Any, index: Mapping[str, tuple[int, str]], *, region: str = "", account: str = ""
) -> Resolution:
    """The package ``value`` names, in ``index`` (``package_index``); see ``Resolution``."""
    ref = value if isinstance(value, PackageRef) else package_ref(value, region=region, account=account)
    found = index.get(ref.key) if ref.arn else None
    if found is not None:
        return Resolution(found[1], found[0])
    return Resolution(ref.arn or ref.written, None)
