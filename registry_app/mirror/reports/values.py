"""Parse SageMaker evaluation reports (the files ModelMetrics points at) into one neutral shape.

Pure: no ORM, no boto3, no I/O. The caller fetches the bytes; this module only reads them.

Recognised sections (see docs/aws-formats.md section 5):

- Model Monitor / Pipelines model quality: ``regression_metrics``, ``binary_classification_metrics``,
  ``multiclass_classification_metrics``. Entries are ``{"value", "standard_deviation"}`` objects or bare
  numbers; ``confusion_matrix`` is keyed actual -> predicted -> count; ROC and precision-recall curves.
- Clarify ``analysis.json``: ``pre_training_bias_metrics``, ``post_training_bias_metrics`` and ``explanations``.
- The model-card metric schema: ``{"metric_groups": [{"name", "metric_data": [...]}]}``.

Reports come from pipelines we do not control, so parsing is tolerant: a bad metric is skipped with a
warning, non-finite numbers become ``None``, and only a document with nothing recognisable is rejected.
Every string is returned as plain text; escaping is the template's job.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Callable, Iterable
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

MAX_REPORT_BYTES = 16 * 1024 * 1024  # Model Monitor/Clarify files are kilobytes; refuse anything absurd.
MAX_MATRIX_LABELS = 200  # A confusion matrix bigger than this is not displayable anyway.
MAX_WARNINGS = 50
_MAX_INT_DIGITS = 400  # Longer integer literals are parsed as (infinite) floats, never as huge ints.
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


def _number(raw: Any) -> tuple[bool, float | None]:
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


def _count(value: float) -> int | float:
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


def _clean(text: str) -> str:
    """Plain text that can be encoded as UTF-8 (JSON allows lone surrogates; HTTP responses do not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _label(raw: Any) -> str:
    """A class label, facet value or threshold as text."""
    if isinstance(raw, str):
        return _clean(raw)
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int):
        return str(raw) if abs(raw) < 10**_MAX_INT_DIGITS else "(huge integer)"
    if isinstance(raw, float):
        return repr(raw)
    if isinstance(raw, list):
        return ",".join(_label(item) for item in raw)
    try:
        return _clean(json.dumps(raw, sort_keys=True, default=str))
    except (TypeError, ValueError, RecursionError):
        return "(unprintable)"


def _name(raw: Any) -> str | None:
    """A metric name, or None when it is missing or not a scalar."""
    if isinstance(raw, str):
        return _clean(raw) if raw.strip() else None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return _label(raw)
    return None


def _shown(name: str) -> str:
    return name if len(name) <= _MAX_SHOWN_NAME else name[: _MAX_SHOWN_NAME - 1] + "…"


def _sort_labels(labels: Iterable[str]) -> list[str]:
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


class _Collector:
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


# --------------------------------------------------------------------------------------------- pieces


def _curve(xs: Any, ys: Any, x_label: str, y_label: str, where: str, out: _Collector) -> dict | None:
    if not isinstance(xs, list) or not isinstance(ys, list):
        out.warn(f"{where}: expected two lists of numbers; curve skipped")
        return None
    if len(xs) != len(ys):
        out.warn(f"{where}: {len(xs)} x values but {len(ys)} y values; extra points ignored")
    return _curve_from_pairs(zip(xs, ys, strict=False), x_label, y_label, where, out)


def _curve_from_pairs(pairs: Iterable[Any], x_label: str, y_label: str, where: str, out: _Collector) -> dict | None:
    x_values: list[float] = []
    y_values: list[float] = []
    dropped = 0
    for pair in pairs:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            dropped += 1
            continue
        x_ok, x = _number(pair[0])
        y_ok, y = _number(pair[1])
        if not (x_ok and y_ok) or x is None or y is None:
            dropped += 1
            continue
        x_values.append(x)
        y_values.append(y)
    if dropped:
        out.warn(f"{where}: {dropped} point(s) without two finite numbers were dropped")
    if not x_values:
        out.warn(f"{where}: no usable points; curve skipped")
        return None
    return {"x": x_values, "y": y_values, "x_label": x_label, "y_label": y_label}


def _confusion_from_nested(raw: Any, where: str, out: _Collector) -> dict | None:
    """Model Monitor form: ``{actual: {predicted: count}}``."""
    if not isinstance(raw, dict):
        out.warn(f"{where}: is {json_type_name(raw)}, expected an object; skipped")
        return None
    labels: list[str] = []
    for actual, row in raw.items():
        labels.append(_clean(actual))
        if isinstance(row, dict):
            labels.extend(_clean(predicted) for predicted in row)
        else:
            out.warn(f'{where}: row "{_shown(actual)}" is {json_type_name(row)}, expected an object; row ignored')
    ordered = _sort_labels(labels)
    if not ordered:
        out.warn(f"{where}: empty; skipped")
        return None
    if len(ordered) > MAX_MATRIX_LABELS:
        out.warn(f"{where}: {len(ordered)} classes, more than {MAX_MATRIX_LABELS}; skipped")
        return None
    index = {label: i for i, label in enumerate(ordered)}
    matrix: list[list[int | float | None]] = [[0 for _ in ordered] for _ in ordered]
    bad_cells = 0
    for actual, row in raw.items():
        if not isinstance(row, dict):
            continue
        for predicted, count in row.items():
            ok, value = _number(count)
            cell: int | float | None = _count(value) if ok and value is not None else None
            if cell is None:
                bad_cells += 1
            matrix[index[_clean(actual)]][index[_clean(predicted)]] = cell
    if bad_cells:
        out.warn(f"{where}: {bad_cells} count(s) are not finite numbers and are shown as missing")
    return {"labels": ordered, "matrix": matrix}


def _axis_labels(raw: Any, size: int) -> list[str]:
    if isinstance(raw, list) and len(raw) == size:
        return [_label(item) for item in raw]
    return [str(i) for i in range(size)]


def _confusion_from_rows(rows: Any, x_axis: Any, y_axis: Any, where: str, out: _Collector) -> dict | None:
    """Model-card ``matrix``: rows follow ``x_axis_name`` (actual), columns ``y_axis_name`` (predicted).

    That orientation is how the SageMaker SDK converts a Model Monitor confusion matrix into a card.
    """
    if not isinstance(rows, list) or not rows or not all(isinstance(row, list) for row in rows):
        out.warn(f"{where}: expected a list of rows; matrix skipped")
        return None
    width = max(len(row) for row in rows)
    if len(rows) > MAX_MATRIX_LABELS or width > MAX_MATRIX_LABELS:
        out.warn(f"{where}: larger than {MAX_MATRIX_LABELS}x{MAX_MATRIX_LABELS}; skipped")
        return None
    bad_cells = 0
    matrix: list[list[int | float | None]] = []
    for row in rows:
        cells: list[int | float | None] = []
        for j in range(width):
            ok, value = _number(row[j]) if j < len(row) else (False, None)
            if ok and value is not None:
                cells.append(_count(value))
            else:
                cells.append(None)
                bad_cells += 1
        matrix.append(cells)
    if bad_cells:
        out.warn(f"{where}: {bad_cells} cell(s) are missing or not finite numbers")
    row_labels = _axis_labels(x_axis, len(rows))
    column_labels = _axis_labels(y_axis, width)
    if row_labels == column_labels and len(set(row_labels)) == len(row_labels):
        order = [row_labels.index(label) for label in _sort_labels(row_labels)]
        return {
            "labels": [row_labels[i] for i in order],
            "matrix": [[matrix[i][j] for j in order] for i in order],
        }
    return {"labels": row_labels, "column_labels": column_labels, "matrix": matrix}


# --------------------------------------------------------------------------------------------- sections

_ROC_KEY = "receiver_operating_characteristic_curve"
_PR_KEY = "precision_recall_curve"
_CURVE_ALIASES = {_ROC_KEY: "roc", "roc": "roc", _PR_KEY: "precision_recall", "precision_recall": "precision_recall"}


def _quality_section(section_key: str, kind: str) -> Callable[[Any, _Collector], bool]:
    def parse(section: Any, out: _Collector) -> bool:
        if not isinstance(section, dict):
            out.warn(f"{section_key}: is {json_type_name(section)}, expected an object; skipped")
            return False
        for raw_name, entry in section.items():
            name = _clean(raw_name)
            where = f"{section_key}.{_shown(name)}"
            if name == "confusion_matrix":
                matrix = _confusion_from_nested(entry, where, out)
                if matrix is not None:
                    out.set_confusion_matrix(matrix, where)
            elif name == _ROC_KEY:
                entry = entry if isinstance(entry, dict) else {}
                curve = _curve(
                    entry.get("false_positive_rates"),
                    entry.get("true_positive_rates"),
                    "False positive rate",
                    "True positive rate",
                    where,
                    out,
                )
                if curve is not None:
                    out.add_curve("roc", curve)
            elif name == _PR_KEY:
                entry = entry if isinstance(entry, dict) else {}
                curve = _curve(entry.get("recalls"), entry.get("precisions"), "Recall", "Precision", where, out)
                if curve is not None:
                    out.add_curve("precision_recall", curve)
            else:
                _quality_metric(name, entry, kind, where, out)
        return True

    return parse


def _quality_metric(name: str, entry: Any, kind: str, where: str, out: _Collector) -> None:
    if isinstance(entry, dict):
        if "value" not in entry:
            out.warn(f"{where}: no value; skipped")
            return
        raw_value, raw_std = entry["value"], entry.get("standard_deviation")
    else:
        raw_value, raw_std = entry, None
    ok, value = _number(raw_value)
    if not ok:
        out.warn(f"{where}: value is {json_type_name(raw_value)}, not a number; skipped")
        return
    if value is None:
        out.warn(f"{where}: value is missing or not finite")
    std_ok, std = _number(raw_std)
    if not std_ok:
        out.warn(f"{where}: standard deviation is {json_type_name(raw_std)}, not a number; ignored")
    out.metrics.append(MetricValue(name=name, value=value, standard_deviation=std, kind=kind))


def _bias_section(section_key: str, stage: str) -> Callable[[Any, _Collector], bool]:
    def parse(section: Any, out: _Collector) -> bool:
        facets = section.get("facets") if isinstance(section, dict) else None
        if not isinstance(facets, dict):
            out.warn(f"{section_key}: no facets object; skipped")
            return False
        for facet_name, groups in facets.items():
            where = f"{section_key}.facets.{_shown(_clean(facet_name))}"
            if not isinstance(groups, list):
                out.warn(f"{where}: is {json_type_name(groups)}, expected a list; skipped")
                continue
            for group in groups:
                _bias_group(_clean(facet_name), group, stage, where, out)
        return True

    return parse


def _bias_group(facet_name: str, group: Any, stage: str, where: str, out: _Collector) -> None:
    if not isinstance(group, dict):
        out.warn(f"{where}: entry is {json_type_name(group)}, expected an object; skipped")
        return
    threshold = group.get("value_or_threshold")
    facet = facet_name if threshold is None else f"{facet_name}={_label(threshold)}"
    metrics = group.get("metrics")
    if not isinstance(metrics, list):
        out.warn(f"{where}: metrics for {_shown(facet)} is {json_type_name(metrics)}, expected a list; skipped")
        return
    for metric in metrics:
        name = _name(metric.get("name")) if isinstance(metric, dict) else None
        if not isinstance(metric, dict) or name is None:
            out.warn(f"{where}: a metric for {_shown(facet)} has no name; skipped")
            continue
        raw_value = metric.get("value")
        ok, value = _number(raw_value)
        if not ok:
            out.warn(
                f"{where}: {_shown(name)} for {_shown(facet)} is {json_type_name(raw_value)}, not a number; skipped"
            )
            continue
        if value is None:
            out.warn(f"{where}: {_shown(name)} for {_shown(facet)} has no finite value")
        description = metric.get("description")
        out.metrics.append(
            MetricValue(
                name=name,
                value=value,
                standard_deviation=None,
                kind=KIND_BIAS,
                facet=facet,
                stage=stage,
                description=_clean(description) if isinstance(description, str) else "",
            )
        )


def _explanations_section(section: Any, out: _Collector) -> bool:
    if not isinstance(section, dict):
        out.warn(f"explanations: is {json_type_name(section)}, expected an object; skipped")
        return False
    for raw_method, per_label in section.items():
        method = _clean(raw_method)
        if method == "pdp":
            _pdp(per_label, out)
            continue
        if not isinstance(per_label, dict):
            out.warn(f"explanations.{_shown(method)}: is {json_type_name(per_label)}, expected an object; skipped")
            continue
        for raw_label, data in per_label.items():
            shap = data.get("global_shap_values") if isinstance(data, dict) else None
            if shap is None:
                continue
            where = f"explanations.{_shown(method)}.{_shown(_clean(raw_label))}"
            if not isinstance(shap, dict):
                out.warn(f"{where}: global_shap_values is {json_type_name(shap)}, expected an object; skipped")
                continue
            for raw_feature, raw_value in shap.items():
                ok, value = _number(raw_value)
                feature = _clean(raw_feature)
                if not ok:
                    out.warn(f"{where}: SHAP value of {_shown(feature)} is {json_type_name(raw_value)}; skipped")
                    continue
                out.metrics.append(
                    MetricValue(
                        name=f"shap:{feature}",
                        value=value,
                        standard_deviation=None,
                        kind=KIND_EXPLAINABILITY,
                        facet=_clean(raw_label),
                        description=f"Global SHAP value ({method})",
                    )
                )
    return True


def _pdp(entries: Any, out: _Collector) -> None:
    """Partial dependence plots: one curve per (numerical feature, label header)."""
    if not isinstance(entries, list):
        out.warn(f"explanations.pdp: is {json_type_name(entries)}, expected a list; skipped")
        return
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        feature = _label(entry.get("feature_name", "?"))
        if entry.get("data_type") != "numerical":
            out.warn(f"explanations.pdp: {_shown(feature)} is not numerical; its plot is not shown")
            continue
        headers = entry.get("label_headers")
        predictions = entry.get("model_predictions")
        if not isinstance(headers, list) or not isinstance(predictions, list):
            out.warn(f"explanations.pdp: {_shown(feature)} has no label_headers/model_predictions lists; skipped")
            continue
        for header, ys in zip(headers, predictions, strict=False):
            label = _label(header)
            where = f"explanations.pdp.{_shown(feature)}.{_shown(label)}"
            curve = _curve(entry.get("feature_values"), ys, feature, label, where, out)
            if curve is not None:
                out.add_curve(f"pdp:{feature}:{label}", curve)


def _metric_groups_section(groups: Any, out: _Collector) -> bool:
    if not isinstance(groups, list):
        out.warn(f"metric_groups: is {json_type_name(groups)}, expected a list; skipped")
        return False
    for i, group in enumerate(groups, start=1):
        if not isinstance(group, dict):
            out.warn(f"metric_groups[{i}]: is {json_type_name(group)}, expected an object; skipped")
            continue
        group_name = _name(group.get("name")) or f"group {i}"
        data = group.get("metric_data")
        if not isinstance(data, list):
            out.warn(
                f"metric_groups.{_shown(group_name)}: metric_data is {json_type_name(data)}, expected a list; skipped"
            )
            continue
        for item in data:
            _card_metric(group_name, item, out)
    return True


def _card_metric(group_name: str, item: Any, out: _Collector) -> None:
    name = _name(item.get("name")) if isinstance(item, dict) else None
    if not isinstance(item, dict) or name is None:
        out.warn(f"metric_groups.{_shown(group_name)}: a metric has no name; skipped")
        return
    where = f"metric_groups.{_shown(group_name)}.{_shown(name)}"
    metric_type, value = item.get("type"), item.get("value")
    notes = item.get("notes")
    description = _clean(notes) if isinstance(notes, str) else ""
    if metric_type == "matrix":
        matrix = _confusion_from_rows(value, item.get("x_axis_name"), item.get("y_axis_name"), where, out)
        if matrix is not None:
            out.set_confusion_matrix(matrix, where)
    elif metric_type == "linear_graph":
        x_axis, y_axis = item.get("x_axis_name"), item.get("y_axis_name")
        pairs = value if isinstance(value, list) else []
        curve = _curve_from_pairs(
            pairs,
            _label(x_axis) if x_axis is not None else "x",
            _label(y_axis) if y_axis is not None else "y",
            where,
            out,
        )
        if curve is not None:
            out.add_curve(_CURVE_ALIASES.get(name, name), curve)
    elif metric_type == "bar_chart":
        _bar_chart(name, value, item.get("x_axis_name"), description, where, out)
    elif metric_type in (None, "number"):
        ok, number = _number(value)
        if not ok:
            out.warn(f"{where}: value is {json_type_name(value)}, not a number; skipped")
            return
        if number is None:
            out.warn(f"{where}: value is missing or not finite")
        out.metrics.append(
            MetricValue(name=name, value=number, standard_deviation=None, kind=KIND_MODEL_CARD, description=description)
        )
    elif metric_type in ("string", "boolean"):
        out.warn(f"{where}: {metric_type} metric is not numeric; skipped")
    else:
        out.warn(f"{where}: unknown metric type {_shown(_label(metric_type))}; skipped")


def _bar_chart(name: str, values: Any, x_axis: Any, description: str, where: str, out: _Collector) -> None:
    """A bar chart becomes one metric per bar, the bar's label in ``facet``."""
    if not isinstance(values, list):
        out.warn(f"{where}: bar chart value is {json_type_name(values)}, expected a list; skipped")
        return
    labels = _axis_labels(x_axis, len(values))
    for label, raw in zip(labels, values, strict=True):
        ok, number = _number(raw)
        if not ok:
            out.warn(f"{where}: bar {_shown(label)} is {json_type_name(raw)}, not a number; skipped")
            continue
        out.metrics.append(
            MetricValue(
                name=name,
                value=number,
                standard_deviation=None,
                kind=KIND_MODEL_CARD,
                facet=label,
                description=description,
            )
        )


_SECTIONS: dict[str, tuple[str, Callable[[Any, _Collector], bool]]] = {
    "regression_metrics": (KIND_REGRESSION, _quality_section("regression_metrics", KIND_REGRESSION)),
    "binary_classification_metrics": (KIND_BINARY, _quality_section("binary_classification_metrics", KIND_BINARY)),
    "multiclass_classification_metrics": (
        KIND_MULTICLASS,
        _quality_section("multiclass_classification_metrics", KIND_MULTICLASS),
    ),
    "pre_training_bias_metrics": (KIND_BIAS, _bias_section("pre_training_bias_metrics", STAGE_PRE_TRAINING)),
    "post_training_bias_metrics": (KIND_BIAS, _bias_section("post_training_bias_metrics", STAGE_POST_TRAINING)),
    "explanations": (KIND_EXPLAINABILITY, _explanations_section),
    "metric_groups": (KIND_MODEL_CARD, _metric_groups_section),
}


def _parse_sections(document: dict, out: _Collector) -> bool:
    """Parse every recognised section of ``document``; True when at least one key was recognised."""
    recognised = False
    for key, value in document.items():
        if key not in _SECTIONS:
            continue
        recognised = True
        kind, parser = _SECTIONS[key]
        if parser(value, out):
            out.kinds.append(kind)
    return recognised


# --------------------------------------------------------------------------------------------- public API


def _parse_int(literal: str) -> int | float:
    # Python refuses int literals over 4,300 digits (and big ones are slow); such a number is "infinite" here.
    return int(literal) if len(literal) <= _MAX_INT_DIGITS else float(literal)


def _load_json(body: bytes | str) -> Any:
    if isinstance(body, bytes | bytearray | memoryview):
        raw = bytes(body)
        if len(raw) > MAX_REPORT_BYTES:
            raise ReportParseError(f"report is {len(raw)} bytes, larger than the {MAX_REPORT_BYTES} byte limit")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ReportParseError(f"report is not valid UTF-8 (bad byte at offset {exc.start})") from None
    elif isinstance(body, str):
        text = body.removeprefix("\ufeff")
        if len(text) > MAX_REPORT_BYTES:
            raise ReportParseError(f"report is {len(text)} characters, larger than the {MAX_REPORT_BYTES} limit")
    else:
        raise ReportParseError(f"report must be bytes or text, not {type(body).__name__}")
    if not text.strip():
        raise ReportParseError("report is empty")
    try:
        return json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise ReportParseError(f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise ReportParseError("not valid JSON: nested too deeply") from None
    except ValueError as exc:
        raise ReportParseError(f"not valid JSON: {exc}") from None


def parse_report(body: bytes | str) -> ParsedReport:
    """Parse one evaluation report.

    Sections are looked for at the top level; when none is there, one level down (a wrapper object such as
    ``{"evaluation": {"regression_metrics": ...}}``). Raises ``ReportParseError`` only when the body is not a
    JSON object or holds no recognised section; everything else degrades to warnings.
    """
    document = _load_json(body)
    if not isinstance(document, dict):
        raise ReportParseError(f"top-level JSON is {json_type_name(document)}, expected an object")
    out = _Collector()
    recognised = _parse_sections(document, out)
    if not recognised:
        for value in document.values():
            if isinstance(value, dict):
                recognised = _parse_sections(value, out) or recognised
    if not recognised:
        keys = [_shown(_clean(key)) for key in document]
        found = ", ".join(keys[:20]) + (f", … ({len(keys)} keys)" if len(keys) > 20 else "")
        raise ReportParseError(f"no recognised metrics section (found keys: {found or 'none'})")
    kind = next((kind for kind in KIND_PRIORITY if kind in out.kinds), KIND_UNKNOWN)
    return ParsedReport(
        kind=kind,
        metrics=out.metrics,
        curves=out.curves,
        confusion_matrix=out.confusion_matrix,
        warnings=out.finish(),
        document=document,
    )


_HEX = re.compile(r"[0-9a-f]+")
_DIGEST_ALGORITHMS = {"sha256": ("sha256", 64), "sha-256": ("sha256", 64), "md5": ("md5", 32)}


def verify_content_digest(body: bytes, declared: str) -> bool | None:
    """Check a ModelMetrics ``ContentDigest`` against the report bytes.

    Accepts ``sha256:<hex>`` (the API's form), bare 64-hex sha256, ``md5:<hex>`` and bare 32-hex md5, in any case.
    Returns None when the declared digest is in a form we cannot check.
    """
    if not isinstance(declared, str):
        return None
    text = declared.strip().lower()
    prefix, sep, hex_digest = text.partition(":")
    if sep:
        spec = _DIGEST_ALGORITHMS.get(prefix)
    else:
        hex_digest = text
        spec = {64: ("sha256", 64), 32: ("md5", 32)}.get(len(text))
    if spec is None or len(hex_digest) != spec[1] or not _HEX.fullmatch(hex_digest):
        return None
    actual = hashlib.new(spec[0], bytes(body), usedforsecurity=False).hexdigest()
    return hmac.compare_digest(actual, hex_digest)


HIGHER_IS_BETTER = frozenset(
    {
        "auc",
        "roc_auc",
        "auc_roc",
        "aucpr",
        "pr_auc",
        "auprc",
        "average_precision",
        "accuracy",
        "balanced_accuracy",
        "top_k_accuracy",
        "f1",
        "f1_score",
        "f0_5",
        "f2",
        "fbeta",
        "precision",
        "recall",
        "sensitivity",
        "specificity",
        "true_positive_rate",
        "true_negative_rate",
        "tpr",
        "tnr",
        "r2",
        "r_squared",
        "adjusted_r2",
        "explained_variance",
        "mcc",
        "matthews_corrcoef",
        "kappa",
        "cohen_kappa",
        "map",
        "ndcg",
        "bleu",
        "rouge",
        "iou",
        "dice",
    }
)
LOWER_IS_BETTER = frozenset(
    {
        "mse",
        "rmse",
        "mae",
        "mape",
        "msle",
        "rmsle",
        "mean_squared_error",
        "root_mean_squared_error",
        "mean_absolute_error",
        "mean_absolute_percentage_error",
        "median_absolute_error",
        "max_error",
        "logloss",
        "log_loss",
        "mlogloss",
        "loss",
        "cross_entropy",
        "error",
        "merror",
        "error_rate",
        "misclassification_rate",
        "false_positive_rate",
        "false_negative_rate",
        "fpr",
        "fnr",
        "brier_score",
        "hinge_loss",
        "perplexity",
        "wer",
        "cer",
    }
)
# Clarify bias metrics (pre- and post-training). Every one is ideal at 0 except disparate impact, ideal at 1.
BIAS_IDEAL_ZERO = frozenset(
    {
        "CI",
        "DPL",
        "KL",
        "JS",
        "LP",
        "TVD",
        "KS",
        "CDDL",
        "DPPL",
        "DCA",
        "DCACC",
        "DCR",
        "RD",
        "SD",
        "DAR",
        "DRR",
        "AD",
        "TE",
        "FT",
        "CDDPL",
        "GE",
    }
)
BIAS_IDEAL_ONE = frozenset({"DI"})
_BIAS_ABBREVIATION = re.compile(r"\(([A-Za-z]{2,6})\)\s*$")
_GENERIC_KINDS = frozenset({KIND_MODEL_CARD, KIND_UNKNOWN, ""})


def _bias_direction(name: str) -> str | None:
    text = name.strip()
    match = _BIAS_ABBREVIATION.search(text)  # "Disparate Impact (DI)" -> "DI"
    short = (match.group(1) if match else text).upper()
    if short in BIAS_IDEAL_ONE:
        return "one"
    if short in BIAS_IDEAL_ZERO:
        return "zero"
    return None


def _normalise_metric_name(name: str) -> str:
    text = name.strip().lower().rsplit(":", 1)[-1]  # "validation:auc" -> "auc"
    text = re.sub(r"[\s\-]+", "_", text).strip("_")
    text = text.removesuffix("_best_constant_classifier")
    for prefix in ("weighted_", "macro_", "micro_"):
        text = text.removeprefix(prefix)
    return text


def metric_direction(name: str, kind: str) -> str | None:
    """Which way is better: "higher", "lower", "zero" (closest to 0), "one" (closest to 1) or None if unknown."""
    if not isinstance(name, str) or not name.strip():
        return None
    if kind == KIND_BIAS:
        return _bias_direction(name)
    if kind == KIND_EXPLAINABILITY:
        return None  # SHAP values describe the model; neither direction is "better".
    if kind in _GENERIC_KINDS and name.strip().isupper():
        bias = _bias_direction(name)
        if bias is not None:
            return bias
    normalised = _normalise_metric_name(name)
    if normalised in HIGHER_IS_BETTER:
        return "higher"
    if normalised in LOWER_IS_BETTER:
        return "lower"
    return None


def better(name: str, kind: str, candidate: float, baseline: float) -> bool | None:
    """Is ``candidate`` better than ``baseline``? None when the direction is unknown, a value is not finite,
    or the two are equally good (compared with a 1e-12 tolerance)."""
    direction = metric_direction(name, kind)
    if direction is None:
        return None
    c_ok, c = _number(candidate)
    b_ok, b = _number(baseline)
    if not (c_ok and b_ok) or c is None or b is None:
        return None
    scores = {
        "higher": (c, b),
        "lower": (-c, -b),
        "zero": (-abs(c), -abs(b)),
        "one": (-abs(c - 1.0), -abs(b - 1.0)),
    }
    candidate_score, baseline_score = scores[direction]
    if math.isclose(candidate_score, baseline_score, rel_tol=1e-12, abs_tol=1e-12):
        return None
    return candidate_score > baseline_score
