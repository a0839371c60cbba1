"""Clarify ``analysis.json`` bias sections: ``pre_training_bias_metrics`` and ``post_training_bias_metrics``.

Each facet holds a list of groups (one per ``value_or_threshold``) with their named metrics. A metric becomes
a ``MetricValue`` whose ``facet`` is ``<facet>=<value or threshold>`` and whose ``stage`` says pre- or
post-training. Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from registry_app.mirror.reports.values import (
    KIND_BIAS,
    Collector,
    MetricValue,
    as_label,
    as_metric_name,
    as_number,
    clean_text,
    json_type_name,
    shown,
)


def bias_section(section_key: str, stage: str) -> Callable[[Any, Collector], bool]:
    def parse(section: Any, out: Collector) -> bool:
        facets = section.get("facets") if isinstance(section, dict) else None
        if not isinstance(facets, dict):
            out.warn(f"{section_key}: no facets object; skipped")
            return False
        for facet_name, groups in facets.items():
            where = f"{section_key}.facets.{shown(clean_text(facet_name))}"
            if not isinstance(groups, list):
                out.warn(f"{where}: is {json_type_name(groups)}, expected a list; skipped")
                continue
            for group in groups:
                _bias_group(clean_text(facet_name), group, stage, where, out)
        return True

    return parse


def _bias_group(facet_name: str, group: Any, stage: str, where: str, out: Collector) -> None:
    if not isinstance(group, dict):
        out.warn(f"{where}: entry is {json_type_name(group)}, expected an object; skipped")
        return
    threshold = group.get("value_or_threshold")
    facet = facet_name if threshold is None else f"{facet_name}={as_label(threshold)}"
    metrics = group.get("metrics")
    if not isinstance(metrics, list):
        out.warn(f"{where}: metrics for {shown(facet)} is {json_type_name(metrics)}, expected a list; skipped")
        return
    for metric in metrics:
        name = as_metric_name(metric.get("name")) if isinstance(metric, dict) else None
        if not isinstance(metric, dict) or name is None:
            out.warn(f"{where}: a metric for {shown(facet)} has no name; skipped")
            continue
        raw_value = metric.get("value")
        ok, value = as_number(raw_value)
        if not ok:
            out.warn(f"{where}: {shown(name)} for {shown(facet)} is {json_type_name(raw_value)}, not a number; skipped")
            continue
        if value is None:
            out.warn(f"{where}: {shown(name)} for {shown(facet)} has no finite value")
        description = metric.get("description")
        out.metrics.append(
            MetricValue(
                name=name,
                value=value,
                standard_deviation=None,
                kind=KIND_BIAS,
                facet=facet,
                stage=stage,
                description=clean_text(description) if isinstance(description, str) else "",
            )
        )
