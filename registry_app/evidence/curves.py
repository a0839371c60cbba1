"""ROC and precision-recall curves: AUC by the trapezoid rule and a readable SVG chart (ticks 0, 0.2 … 1,
axis titles, AUC in the legend) with the approved version's curve overlaid in a dashed pattern. Pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.utils.html import format_html
from django.utils.safestring import SafeString

from registry_app.evidence import axes
from registry_app.evidence.numbers import as_float, plain

WIDTH, HEIGHT = 420, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 18, 14, 46
MAX_POINTS = 2000  # a curve with more points is thinned for drawing (the AUC uses every point)

# The report metric that states each curve's area, by curve key (first found wins).
STATED_AREA = {
    "roc": ("auc", "roc_auc", "auc_roc"),
    "precision_recall": ("pr_auc", "aucpr", "auprc", "auc_pr", "average_precision"),
}


def points_of(curve: Any) -> list[tuple[float, float]]:
    """The finite (x, y) pairs of ``{"x": [...], "y": [...]}``; anything else gives no points."""
    if not isinstance(curve, dict):
        return []
    xs, ys = curve.get("x"), curve.get("y")
    if not isinstance(xs, list) or not isinstance(ys, list):
        return []
    pairs = []
    for x, y in zip(xs, ys, strict=False):
        fx, fy = as_float(x), as_float(y)
        if fx is not None and fy is not None and not isinstance(x, str) and not isinstance(y, str):
            pairs.append((fx, fy))
    return pairs


def trapezoid_auc(points: list[tuple[float, float]]) -> float | None:
    """Area under the curve by the trapezoid rule, points taken in order of x; None under two points."""
    if len(points) < 2:
        return None
    ordered = sorted(points, key=lambda p: (p[0], p[1]))
    area = 0.0
    for (xa, ya), (xb, yb) in zip(ordered, ordered[1:], strict=False):
        area += (xb - xa) * (ya + yb) / 2
    return area if math.isfinite(area) else None


CURVE_ORDER = ("roc", "precision_recall")


def curve_order(curve_key: str) -> tuple[int, str]:
    """ROC first, then precision-recall, then any other curve, each kind in key order."""
    base = base_key(curve_key)
    return (CURVE_ORDER.index(base) if base in CURVE_ORDER else len(CURVE_ORDER), str(curve_key))


def base_key(curve_key: str) -> str:
    """``roc_2`` -> ``roc`` (the reports number a second curve of the same kind)."""
    base, _, suffix = str(curve_key).rpartition("_")
    return base if base and suffix.isdigit() else str(curve_key)


def stated_area(curve_key: str, metrics: dict[str, float]) -> float | None:
    """The area the report itself states for this curve (``metrics`` by lower-case name, facet-less)."""
    for name in STATED_AREA.get(base_key(curve_key), ()):
        value = as_float(metrics.get(name))
        if value is not None:
            return value
    return None


@dataclass(frozen=True)
class Series:
    label: str  # "This version (v5)", "Approved (v3)"
    points: list[tuple[float, float]]
    area: float | None
    area_stated: bool = False
    baseline: bool = False

    @property
    def legend(self) -> str:
        if self.area is None:
            return f"{self.label}, AUC not computable"
        how = "reported" if self.area_stated else "trapezoid"
        return f"{self.label}, AUC {plain(self.area)} ({how})"


def series(label: str, curve: Any, stated: float | None = None, *, baseline: bool = False) -> Series | None:
    points = points_of(curve)
    if not points:
        return None
    area = stated if stated is not None else trapezoid_auc(points)
    return Series(label, points, area, stated is not None, baseline)


def _span(values: list[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if low >= 0 and high <= 1:  # rates and probabilities: keep the unit square
        return 0.0, 1.0
    if low == high:
        return low - 1, high + 1
    return low, high


def _thin(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    if len(points) <= MAX_POINTS:
        return points
    step = math.ceil(len(points) / MAX_POINTS)
    return [*points[::step], points[-1]]


def curve_svg(title: str, x_label: str, y_label: str, lines: list[Series], *, diagonal: bool = False) -> SafeString:
    """The chart: the current series solid, a baseline series dashed (pattern and colour both differ)."""
    drawn = [s for s in lines if s.points]
    if not drawn:
        return format_html('<span class="muted">{}</span>', "No plottable points")
    x0, x1 = _span([x for s in drawn for x, _ in s.points])
    y0, y1 = _span([y for s in drawn for _, y in s.points])
    x_ticks, y_ticks = axes.nice_ticks(x0, x1), axes.nice_ticks(y0, y1)
    x0, x1 = min(x0, x_ticks[0]), max(x1, x_ticks[-1])
    y0, y1 = min(y0, y_ticks[0]), max(y1, y_ticks[-1])
    height = HEIGHT + axes.legend_height(len(drawn))
    frame = axes.Frame(WIDTH, height, LEFT, RIGHT, TOP, BOTTOM + axes.legend_height(len(drawn)), x0, x1, y0, y1)
    parts = [axes.grid(frame, x_ticks, y_ticks), axes.axis_titles(frame, x_label, y_label)]
    if diagonal and (x0, x1, y0, y1) == (0.0, 1.0, 0.0, 1.0):
        parts.append(
            format_html(
                '<line class="chart-chance" x1="{}" y1="{}" x2="{}" y2="{}" stroke-dasharray="2 4">'
                "<title>Chance (AUC 0.5)</title></line>",
                f"{frame.sx(0):.1f}",
                f"{frame.sy(0):.1f}",
                f"{frame.sx(1):.1f}",
                f"{frame.sy(1):.1f}",
            )
        )
    entries = []
    # The baseline first, so the current version's line is drawn on top of it.
    for s in sorted(drawn, key=lambda s: not s.baseline):
        css = "chart-line chart-line-baseline" if s.baseline else "chart-line chart-line-current"
        dash = axes.DASHES[1] if s.baseline else ""
        parts.append(
            format_html(
                '<polyline class="{}" points="{}"{}><title>{}</title></polyline>',
                css,
                frame.points(_thin(s.points)),
                axes.dash_attr(dash),
                s.legend,
            )
        )
    for s in drawn:
        css = "chart-line chart-line-baseline" if s.baseline else "chart-line chart-line-current"
        entries.append(axes.LegendEntry(s.legend, css, axes.DASHES[1] if s.baseline else ""))
    parts.append(axes.legend(frame, entries))
    desc = "; ".join(s.legend for s in drawn)
    return axes.svg(frame, "chart chart-curve", title or f"{y_label} against {x_label}", axes.join(parts), desc)
