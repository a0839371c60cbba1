"""Confusion matrices for people: class labels, counts and row percentages (rows are the actual class, so
a row's percentages say how that class was predicted). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry_app.evidence.numbers import EMPTY, as_float, plain

BINARY_KIND = "binary_classification"
BINARY_NAMES = {"0": "negative", "1": "positive"}
BINARY_NOTE = (
    "The report is a binary classification and names its classes only 0 and 1: "
    "they are shown as negative (0) and positive (1)."
)


@dataclass(frozen=True)
class Cell:
    count: str
    percent: str  # of the row (actual class); "" when the row has no total
    hit: bool  # on the diagonal: predicted as it actually is


@dataclass(frozen=True)
class MatrixView:
    rows: list[tuple[str, list[Cell], str]]  # (actual label, cells, row total)
    columns: list[str]  # predicted labels
    note: str


def parts(matrix: Any) -> tuple[list[str], list[str], list[list[Any]]] | None:
    """Row labels, column labels and cells from either producer's shape.

    ``registry_app.mirror.cards``: ``{"labels_x" (rows), "labels_y" (columns), "matrix"}``;
    ``registry_app.mirror.reports.charts``: ``{"labels", "column_labels"?, "matrix"}``.
    """
    if not isinstance(matrix, dict):
        return None
    cells = matrix.get("matrix")
    if not isinstance(cells, list) or not all(isinstance(row, list) for row in cells):
        return None
    rows = matrix.get("labels_x") or matrix.get("labels") or []
    columns = matrix.get("labels_y") or matrix.get("column_labels") or matrix.get("labels") or []
    width = max((len(row) for row in cells), default=0)
    rows = [str(label) for label in rows] if len(rows) == len(cells) else [str(i) for i in range(len(cells))]
    columns = [str(label) for label in columns] if len(columns) == width else [str(i) for i in range(width)]
    return rows, columns, cells


def _named(labels: list[str]) -> list[str]:
    return [f"{BINARY_NAMES[label]} ({label})" for label in labels]


def _percent(count: float | None, total: float) -> str:
    if count is None or total <= 0:
        return ""
    return f"{plain(count / total * 100, 1)} %"


def confusion_view(matrix: Any, kind: str = "") -> MatrixView | None:
    """Rows (actual) × columns (predicted) with counts and row percentages; None for an unusable matrix."""
    found = parts(matrix)
    if found is None or not found[2]:
        return None
    rows, columns, cells = found
    note = ""
    binary_unnamed = kind == BINARY_KIND and set(rows) == {"0", "1"} and set(columns) == {"0", "1"}
    diagonal_labels = list(rows) == list(columns)
    if binary_unnamed:
        rows, columns, note = _named(rows), _named(columns), BINARY_NOTE
    out = []
    for i, (label, row) in enumerate(zip(rows, cells, strict=False)):
        values = [as_float(row[j]) if j < len(row) else None for j in range(len(columns))]
        total = sum(v for v in values if v is not None)
        out.append(
            (
                label,
                [
                    Cell(EMPTY if v is None else plain(v), _percent(v, total), diagonal_labels and i == j)
                    for j, v in enumerate(values)
                ],
                plain(total),
            )
        )
    return MatrixView(out, columns, note)
