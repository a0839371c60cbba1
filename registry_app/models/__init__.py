from __future__ import annotations

from .registry import (
    Endpoint,
    EndpointVariant,
    EvaluationReport,
    Metric,
    ModelCard,
    ModelPackage,
    ModelPackageGroup,
    PackageObservation,
)
from .runs import SyncRun
from .sources import RegistrySource

__all__ = [
    "Endpoint",
    "EndpointVariant",
    "EvaluationReport",
    "Metric",
    "ModelCard",
    "ModelPackage",
    "ModelPackageGroup",
    "PackageObservation",
    "RegistrySource",
    "SyncRun",
]
