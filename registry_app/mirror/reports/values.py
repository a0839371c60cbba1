"""The neutral shape every report format is parsed into, and the tolerant readers its parsers share.

Pure: no ORM, no boto3, no I/O. Reports come from pipelines we do not control, so reading is tolerant:
non-finite numbers, ``null`` and ``"NaN"`` read as ``None``; labels and names of any JSON type become plain
text; every string is made encodable as UTF-8 (``clean_text``, which the model card display uses too).
Escaping is the template's job.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

KIND_REGRESSION = "regression"
KIND_BINARY = "binary_classification"
KIND_MULTICLASS = "multiclass_classification"
KIND_BIAS = "clarify_bias"
KIND_EXPLAINABILITY = "clarify_explainability"
KIND_MODEL_CARD = "model_card_metrics"
KIND_UNKNOWN = "unknown"

# When a report holds several sections, the report's kind is the first of these that parsed.
KIND_PRIORITY: tuple[str, ...] = (
    KIND_BINARY,
    KIND_MULTICLASS,
    KIND_REGRESSION,
    KIND_MODEL_CARD,
    KIND_BIAS,
    KIND_EXPLAINABILITY,
)

STAGE_PRE_TRAINING = "pre_training"
STAGE_POST_TRAINING = "post_training"

MAX_MATRIX_LABELS = 200  # A confusion matrix bigger than this is not displayable anyway.
MAX_WARNINGS = 50
MAX_INT_DIGITS = 400  # Longer integer literals are parsed as (infinite) floats, never as huge ints.
_MAX_SHOWN_NAME = 80


@dataclass(frozen=True)
class MetricValue:
    name: str
    value: float | None
    standard_deviation: float | None
    kind: str
    facet: str = ""
    stage: str = ""
    description: str = ""


@dataclass
class ParsedReport:
    kind: str
    metrics: list[MetricValue]
    curves: dict[str, dict]
    confusion_matrix: dict | None
    warnings: list[str]
    document: dict | None = field(default=None, repr=False, compare=False)  # the JSON as parsed


class ReportParseError(ValueError):
    """The report cannot be read at all (bad encoding, bad JSON, nothing recognisable)."""


# --------------------------------------------------------------------------------------------- numbers

_NON_FINITE_STRINGS = frozenset(
    {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "null", "none"}
)


def as_number(raw: Any) -> tuple[bool, float | None]:
    """Return ``(is_numeric, value)``; non-finite numbers, ``null`` and ``"NaN"`` are numeric with value None."""
    if raw is None:
        return True, None
    if isinstance(raw, bool):
        return False, None
    if isinstance(raw, int):
        try:
            return True, float(raw)
        except OverflowError:
            return True, None
    if isinstance(raw, float):
        return True, (raw if math.isfinite(raw) else None)
    if isinstance(raw, str) and raw.strip().lower() in _NON_FINITE_STRINGS:
        return True, None
    return False, None


def as_count(value: float) -> int | float:
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def json_type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def clean_text(text: str) -> str:
    """Plain text that can be encoded as UTF-8 (JSON allows lone surrogates; HTTP responses do not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def as_label(raw: Any) -> str:
    """A class label, facet value or threshold as text."""
    if isinstance(raw, str):
        return clean_text(raw)
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int):
        return str(raw) if abs(raw) < 10**MAX_INT_DIGITS else "(huge integer)"
    if isinstance(raw, float):
        return repr(raw)
    if isinstance(raw, list):
        return ",".join(as_label(item) for item in raw)
    try:
        return clean_text(json.dumps(raw, sort_keys=True, default=str))
    except (TypeError, ValueError, RecursionError):
        return "(unprintable)"


def as_metric_name(raw: Any) -> str | None:
    """A metric name, or None when it is missing or not a scalar."""
    if isinstance(raw, str):
        return clean_text(raw) if raw.strip() else None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return as_label(raw)
    return None


def shown(name: str) -> str:
    return name if len(name) <= _MAX_SHOWN_NAME else name[: _MAX_SHOWN_NAME - 1] + "…"


def sorted_labels(labels: Iterable[str]) -> list[str]:
    """Numeric order when every label is a finite number ("2" before "10"), text order otherwise."""
    unique = list(dict.fromkeys(labels))
    numeric: dict[str, float] = {}
    for label in unique:
        try:
            value = float(label)
        except ValueError:
            return sorted(unique)
        if not math.isfinite(value):
            return sorted(unique)
        numeric[label] = value
    return sorted(unique, key=lambda label: (numeric[label], label))


# --------------------------------------------------------------------------------------------- collector


class Collector:
    """Mutable parse state shared by the section parsers."""

    def __init__(self) -> None:
        self.metrics: list[MetricValue] = []
        self.curves: dict[str, dict] = {}
        self.confusion_matrix: dict | None = None
        self.warnings: list[str] = []
        self.kinds: list[str] = []
        self._dropped_warnings = 0

    def warn(self, message: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)
        else:
            self._dropped_warnings += 1

    def add_curve(self, key: str, curve: dict) -> None:
        final, n = key, 2
        while final in self.curves:
            final, n = f"{key}_{n}", n + 1
        self.curves[final] = curve

    def set_confusion_matrix(self, matrix: dict, where: str) -> None:
        if self.confusion_matrix is None:
            self.confusion_matrix = matrix
        else:
            self.warn(f"{where}: a second confusion matrix was ignored")

    def finish(self) -> list[str]:
        if self._dropped_warnings:
            return [*self.warnings, f"{self._dropped_warnings} more warnings not shown"]
        return list(self.warnings)
