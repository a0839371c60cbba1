"""Clarify ``analysis.json`` ``explanations``: global SHAP values (one metric per label and feature)
and partial dependence plots (``pdp``: one curve per numerical feature and label header). Pure.
"""

from __future__ import annotations

from typing import Any

from registry_app.mirror.reports.charts import xy_curve
from registry_app.mirror.reports.values import (
    KIND_EXPLAINABILITY,
    Collector,
    MetricValue,
    as_label,
    as_number,
    clean_text,
    json_type_name,
    shown,
)


def explanations_section(section: Any, out: Collector) -> bool:
    if not isinstance(section, dict):
        out.warn(f"explanations: is {json_type_name(section)}, expected an object; skipped")
        return False
    for raw_method, per_label in section.items():
        method = clean_text(raw_method)
        if method == "pdp":
            _pdp(per_label, out)
            continue
        if not isinstance(per_label, dict):
            out.warn(f"explanations.{shown(method)}: is {json_type_name(per_label)}, expected an object; skipped")
            continue
        for raw_label, data in per_label.items():
            shap = data.get("global_shap_values") if isinstance(data, dict) else None
            if shap is None:
                continue
            where = f"explanations.{shown(method)}.{shown(clean_text(raw_label))}"
            if not isinstance(shap, dict):
                out.warn(f"{where}: global_shap_values is {json_type_name(shap)}, expected an object; skipped")
                continue
            for raw_feature, raw_value in shap.items():
                ok, value = as_number(raw_value)
                feature = clean_text(raw_feature)
                if not ok:
                    out.warn(f"{where}: SHAP value of {shown(feature)} is {json_type_name(raw_value)}; skipped")
                    continue
                out.metrics.append(
                    MetricValue(
                        name=f"shap:{feature}",
                        value=value,
                        standard_deviation=None,
                        kind=KIND_EXPLAINABILITY,
                        facet=clean_text(raw_label),
                        description=f"Global SHAP value ({method})",
                    )
                )
    return True


def _pdp(entries: Any, out: Collector) -> None:
    """Partial dependence plots: one curve per (numerical feature, label header)."""
    if not isinstance(entries, list):
        out.warn(f"explanations.pdp: is {json_type_name(entries)}, expected a list; skipped")
        return
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        feature = as_label(entry.get("feature_name", "?"))
        if entry.get("data_type") != "numerical":
            out.warn(f"explanations.pdp: {shown(feature)} is not numerical; its plot is not shown")
            continue
        headers = entry.get("label_headers")
        predictions = entry.get("model_predictions")
        if not isinstance(headers, list) or not isinstance(predictions, list):
            out.warn(f"explanations.pdp: {shown(feature)} has no label_headers/model_predictions lists; skipped")
            continue
        for header, ys in zip(headers, predictions, strict=False):
            label = as_label(header)
            where = f"explanations.pdp.{shown(feature)}.{shown(label)}"
            curve = xy_curve(entry.get("feature_values"), ys, feature, label, where, out)
            if curve is not None:
                out.add_curve(f"pdp:{feature}:{label}", curve)
