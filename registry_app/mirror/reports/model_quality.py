"""Model quality sections: ``regression_metrics``, ``binary_classification_metrics`` and
``multiclass_classification_metrics``, as Model Monitor writes them and as a SageMaker Pipelines
``evaluation.json`` holds them (often one level down, under a wrapper key; see ``parse.parse_report``).

Entries are ``{"value", "standard_deviation"}`` objects or bare numbers; ``confusion_matrix`` is keyed
actual -> predicted -> count; the ROC and precision-recall curves are lists of rates. Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from registry_app.mirror.reports.charts import confusion_from_nested, xy_curve
from registry_app.mirror.reports.values import Collector, MetricValue, as_number, clean_text, json_type_name, shown

ROC_KEY = "receiver_operating_characteristic_curve"
PR_KEY = "precision_recall_curve"


def quality_section(section_key: str, kind: str) -> Callable[[Any, Collector], bool]:
    def parse(section: Any, out: Collector) -> bool:
        if not isinstance(section, dict):
            out.warn(f"{section_key}: is {json_type_name(section)}, expected an object; skipped")
            return False
        for raw_name, entry in section.items():
            name = clean_text(raw_name)
            where = f"{section_key}.{shown(name)}"
            if name == "confusion_matrix":
                matrix = confusion_from_nested(entry, where, out)
                if matrix is not None:
                    out.set_confusion_matrix(matrix, where)
            elif name == ROC_KEY:
                entry = entry if isinstance(entry, dict) else {}
                curve = xy_curve(
                    entry.get("false_positive_rates"),
                    entry.get("true_positive_rates"),
                    "False positive rate",
                    "True positive rate",
                    where,
                    out,
                )
                if curve is not None:
                    out.add_curve("roc", curve)
            elif name == PR_KEY:
                entry = entry if isinstance(entry, dict) else {}
                curve = xy_curve(entry.get("recalls"), entry.get("precisions"), "Recall", "Precision", where, out)
                if curve is not None:
                    out.add_curve("precision_recall", curve)
            else:
                _quality_metric(name, entry, kind, where, out)
        return True

    return parse


def _quality_metric(name: str, entry: Any, kind: str, where: str, out: Collector) -> None:
    if isinstance(entry, dict):
        if "value" not in entry:
            out.warn(f"{where}: no value; skipped")
            return
        raw_value, raw_std = entry["value"], entry.get("standard_deviation")
    else:
        raw_value, raw_std = entry, None
    ok, value = as_number(raw_value)
    if not ok:
        out.warn(f"{where}: value is {json_type_name(raw_value)}, not a number; skipped")
        return
    if value is None:
        out.warn(f"{where}: value is missing or not finite")
    std_ok, std = as_number(raw_std)
    if not std_ok:
        out.warn(f"{where}: standard deviation is {json_type_name(raw_std)}, not a number; ignored")
    out.metrics.append(MetricValue(name=name, value=value, standard_deviation=std, kind=kind))
