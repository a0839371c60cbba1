"""Curves and confusion matrices: the chart shapes several report formats share.

A curve is ``{"x", "y", "x_label", "y_label"}`` holding finite points only. A confusion matrix is
``{"labels", "column_labels"?, "matrix"}``, rows actual and columns predicted, its cells numbers or ``None``.
Bad points and cells are dropped or blanked with a warning on the collector. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from registry_app.mirror.reports.values import (
    MAX_MATRIX_LABELS,
    Collector,
    as_count,
    as_label,
    as_number,
    clean_text,
    json_type_name,
    shown,
    sorted_labels,
)


def xy_curve(xs: Any, ys: Any, x_label: str, y_label: str, where: str, out: Collector) -> dict | None:
    if not isinstance(xs, list) or not isinstance(ys, list):
        out.warn(f"{where}: expected two lists of numbers; curve skipped")
        return None
    if len(xs) != len(ys):
        out.warn(f"{where}: {len(xs)} x values but {len(ys)} y values; extra points ignored")
    return curve_from_pairs(zip(xs, ys, strict=False), x_label, y_label, where, out)


def curve_from_pairs(pairs: Iterable[Any], x_label: str, y_label: str, where: str, out: Collector) -> dict | None:
    x_values: list[float] = []
    y_values: list[float] = []
    dropped = 0
    for pair in pairs:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            dropped += 1
            continue
        x_ok, x = as_number(pair[0])
        y_ok, y = as_number(pair[1])
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


def confusion_from_nested(raw: Any, where: str, out: Collector) -> dict | None:
    """Model Monitor form: ``{actual: {predicted: count}}``."""
    if not isinstance(raw, dict):
        out.warn(f"{where}: is {json_type_name(raw)}, expected an object; skipped")
        return None
    labels: list[str] = []
    for actual, row in raw.items():
        labels.append(clean_text(actual))
        if isinstance(row, dict):
            labels.extend(clean_text(predicted) for predicted in row)
        else:
            out.warn(f'{where}: row "{shown(actual)}" is {json_type_name(row)}, expected an object; row ignored')
    ordered = sorted_labels(labels)
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
            ok, value = as_number(count)
            cell: int | float | None = as_count(value) if ok and value is not None else None
            if cell is None:
                bad_cells += 1
            matrix[index[clean_text(actual)]][index[clean_text(predicted)]] = cell
    if bad_cells:
        out.warn(f"{where}: {bad_cells} count(s) are not finite numbers and are shown as missing")
    return {"labels": ordered, "matrix": matrix}


def axis_labels(raw: Any, size: int) -> list[str]:
    if isinstance(raw, list) and len(raw) == size:
        return [as_label(item) for item in raw]
    return [str(i) for i in range(size)]


def confusion_from_rows(rows: Any, x_axis: Any, y_axis: Any, where: str, out: Collector) -> dict | None:
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
            ok, value = as_number(row[j]) if j < len(row) else (False, None)
            if ok and value is not None:
                cells.append(as_count(value))
            else:
                cells.append(None)
                bad_cells += 1
        matrix.append(cells)
    if bad_cells:
        out.warn(f"{where}: {bad_cells} cell(s) are missing or not finite numbers")
    row_labels = axis_labels(x_axis, len(rows))
    column_labels = axis_labels(y_axis, width)
    if row_labels == column_labels and len(set(row_labels)) == len(row_labels):
        order = [row_labels.index(label) for label in sorted_labels(row_labels)]
        return {
            "labels": [row_labels[i] for i in order],
            "matrix": [[matrix[i][j] for j in order] for i in order],
        }
    return {"labels": row_labels, "column_labels": column_labels, "matrix": matrix}
