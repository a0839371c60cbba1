"""The model-card metric schema: ``{"metric_groups": [{"name", "metric_data": [...]}]}``.

A metric is a number, a ``matrix`` (a confusion matrix), a ``linear_graph`` (a curve; the SDK's ROC and
precision-recall names map to ours) or a ``bar_chart`` (one metric per bar). String and boolean metrics are
not numeric and are skipped with a warning. Pure.
"""

from __future__ import annotations

from typing import Any

from registry_app.mirror.reports.charts import axis_labels, confusion_from_rows, curve_from_pairs
from registry_app.mirror.reports.model_quality import PR_KEY, ROC_KEY
from registry_app.mirror.reports.values import (
    KIND_MODEL_CARD,
    Collector,
    MetricValue,
    as_label,
    as_metric_name,
    as_number,
    clean_text,
    json_type_name,
    shown,
)

_CURVE_ALIASES = {ROC_KEY: "roc", "roc": "roc", PR_KEY: "precision_recall", "precision_recall": "precision_recall"}


def metric_groups_section(groups: Any, out: Collector) -> bool:
    if not isinstance(groups, list):
        out.warn(f"metric_groups: is {json_type_name(groups)}, expected a list; skipped")
        return False
    for i, group in enumerate(groups, start=1):
        if not isinstance(group, dict):
            out.warn(f"metric_groups[{i}]: is {json_type_name(group)}, expected an object; skipped")
            continue
        group_name = as_metric_name(group.get("name")) or f"group {i}"
        data = group.get("metric_data")
        if not isinstance(data, list):
            out.warn(
                f"metric_groups.{shown(group_name)}: metric_data is {json_type_name(data)}, expected a list; skipped"
            )
            continue
        for item in data:
            _card_metric(group_name, item, out)
    return True


def _card_metric(group_name: str, item: Any, out: Collector) -> None:
    name = as_metric_name(item.get("name")) if isinstance(item, dict) else None
    if not isinstance(item, dict) or name is None:
        out.warn(f"metric_groups.{shown(group_name)}: a metric has no name; skipped")
        return
    where = f"metric_groups.{shown(group_name)}.{shown(name)}"
    metric_type, value = item.get("type"), item.get("value")
    notes = item.get("notes")
    description = clean_text(notes) if isinstance(notes, str) else ""
    if metric_type == "matrix":
        matrix = confusion_from_rows(value, item.get("x_axis_name"), item.get("y_axis_name"), where, out)
        if matrix is not None:
            out.set_confusion_matrix(matrix, where)
    elif metric_type == "linear_graph":
        x_axis, y_axis = item.get("x_axis_name"), item.get("y_axis_name")
        pairs = value if isinstance(value, list) else []
        curve = curve_from_pairs(
            pairs,
            as_label(x_axis) if x_axis is not None else "x",
            as_label(y_axis) if y_axis is not None else "y",
            where,
            out,
        )
        if curve is not None:
            out.add_curve(_CURVE_ALIASES.get(name, name), curve)
    elif metric_type == "bar_chart":
        _bar_chart(name, value, item.get("x_axis_name"), description, where, out)
    elif metric_type in (None, "number"):
        ok, number = as_number(value)
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
        out.warn(f"{where}: unknown metric type {shown(as_label(metric_type))}; skipped")


def _bar_chart(name: str, values: Any, x_axis: Any, description: str, where: str, out: Collector) -> None:
    """A bar chart becomes one metric per bar, the bar's label in ``facet``."""
    if not isinstance(values, list):
        out.warn(f"{where}: bar chart value is {json_type_name(values)}, expected a list; skipped")
        return
    labels = axis_labels(x_axis, len(values))
    for label, raw in zip(labels, values, strict=True):
        ok, number = as_number(raw)
        if not ok:
            out.warn(f"{where}: bar {shown(label)} is {json_type_name(raw)}, not a number; skipped")
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
