"""The boto3/botocore floor: a SageMaker model without ``UpdateModelPackage.ClientToken`` makes
botocore reject every push before sending it (the push always sends the outbox row id as token)."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import botocore.session
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
# The first botocore whose sagemaker 2017-07-24 model has UpdateModelPackageInput.ClientToken
# (1.35.51 does not; checked against the published wheels).
FIRST_WITH_CLIENT_TOKEN = Version("1.35.52")


def floors() -> dict[str, Version]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    out: dict[str, Version] = {}
    for line in project["dependencies"]:
        requirement = Requirement(line)
        if requirement.name in ("boto3", "botocore"):
            lows = [Version(s.version) for s in requirement.specifier if s.operator in (">=", "==", "~=")]
            out[requirement.name] = max(lows)
    return out


def test_the_installed_sagemaker_model_has_client_token_on_update_model_package() -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    members = model.operation_model("UpdateModelPackage").input_shape.members
    assert "ClientToken" in members
    assert members["ClientToken"].metadata.get("max", 0) >= 36  # a UUID, the push outbox row id


def test_the_declared_floor_has_it_too() -> None:
    """Fails on the old pyproject (boto3>=1.35, no botocore floor): an install resolving to an
    older botocore would reject every push with ParamValidationError."""
    declared = floors()
    assert declared.get("botocore", Version("0")) >= FIRST_WITH_CLIENT_TOKEN
    assert declared.get("boto3", Version("0")) >= FIRST_WITH_CLIENT_TOKEN  # boto3 x.y.z needs botocore x.y.z+
    assert Version(version("botocore")) >= FIRST_WITH_CLIENT_TOKEN
