"""A metric's trend across a group's versions: one line per headline metric, approved versions marked with a
square (shape, not only colour) and a check on the version axis. Metrics on the unit interval share a chart;
a metric on another scale (mse, rmse…) gets its own, so no line is flattened by another's scale. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from django.utils.html import format_html
from django.utils.safestring import SafeString

from registry_app.evidence import axes
from registry_app.evidence.numbers import plain

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 60, 20, 14, 46
MAX_VERSION_TICKS = 12


@dataclass(frozen=True)
class TrendPoint:
    version: int
    value: float
    approved: bool


@dataclass(frozen=True)
class Trend:
    metric: str
    points: list[TrendPoint]  # in version order


def trends(rows: Iterable[tuple[int, bool, Iterable[tuple[str, float | None]]]]) -> list[Trend]:
    """(version, approved, [(metric name, value)]) per version -> one ``Trend`` per metric name (lower case),
    in order of first appearance; values that are missing or not finite are left out."""
    by_metric: dict[str, list[TrendPoint]] = {}
    for version, approved, metrics in sorted(rows, key=lambda row: row[0]):
        seen: set[str] = set()
        for name, value in metrics:
            key = str(name).lower()
            if key in seen or value is None or value != value or value in (float("inf"), float("-inf")):
                continue
            seen.add(key)
            by_metric.setdefault(key, []).append(TrendPoint(version, float(value), approved))
    return [Trend(name, points) for name, points in by_metric.items()]


def chart_groups(found: list[Trend]) -> list[list[Trend]]:
    """Unit-interval metrics together, every other metric alone."""
    unit = [t for t in found if all(0.0 <= p.value <= 1.0 for p in t.points)]
    others = [[t] for t in found if t not in unit]
    return ([unit] if unit else []) + others


def _y_range(values: list[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    pad = (high - low) * 0.15 or max(abs(high) * 0.05, 0.01)
    if not math.isfinite(pad):  # values near the float limits: no padding (nice_ticks copes)
        pad = 0.0
    low, high = low - pad, high + pad
    if min(values) >= 0 and low < 0:
        low = 0.0
    if max(values) <= 1 and high > 1 and min(values) >= 0:
        high = 1.0
    return low, high


def trend_svg(group: list[Trend], title: str) -> SafeString:
    """One chart: a line per trend, a dash pattern per line, squares on approved versions."""
    drawn = [t for t in group if t.points]
    if not drawn:
        return format_html('<span class="muted">{}</span>', "No metric to chart")
    versions = sorted({p.version for t in drawn for p in t.points})
    approved = sorted({p.version for t in drawn for p in t.points if p.approved})
    x0, x1 = (versions[0] - 0.5, versions[-1] + 0.5)
    y_ticks = axes.nice_ticks(*_y_range([p.value for t in drawn for p in t.points]), count=4)
    legend_rows = len(drawn) + (1 if approved else 0)
    extra = axes.legend_height(legend_rows)
    frame = axes.Frame(WIDTH, HEIGHT + extra, LEFT, RIGHT, TOP, BOTTOM + extra, x0, x1, y_ticks[0], y_ticks[-1])
    x_ticks = [float(v) for v in versions]
    if len(x_ticks) > MAX_VERSION_TICKS:
        step = -(-len(x_ticks) // MAX_VERSION_TICKS)
        x_ticks = x_ticks[::step]

    def version_label(v: float) -> str:
        return f"v{int(v)}{' ✓' if int(v) in approved else ''}"

    parts = [axes.grid(frame, x_ticks, y_ticks, x_label=version_label), axes.axis_titles(frame, "Version", "Value")]
    entries = []
    for i, trend in enumerate(drawn):
        css = f"chart-line chart-series chart-series-{i % len(axes.DASHES)}"
        dash = axes.DASHES[i % len(axes.DASHES)]
        pairs = [(float(p.version), p.value) for p in trend.points]
        parts.append(
            format_html(
                '<polyline class="{}" points="{}"{}><title>{}</title></polyline>',
                css,
                frame.points(pairs),
                axes.dash_attr(dash),
                trend.metric,
            )
        )
        for p in trend.points:
            parts.append(_marker(frame, trend.metric, p, i))
        entries.append(axes.LegendEntry(trend.metric, css, dash))
    if approved:
        entries.append(axes.LegendEntry("Approved version (square marker, ✓ on the axis)", "", marker="square"))
    parts.append(axes.legend(frame, entries))
    desc = "; ".join(f"{t.metric}: " + ", ".join(f"v{p.version} {plain(p.value)}" for p in t.points) for t in drawn)
    return axes.svg(frame, "chart chart-trend", title, axes.join(parts), desc)


def _marker(frame: axes.Frame, metric: str, p: TrendPoint, series: int) -> SafeString:
    x, y = frame.sx(float(p.version)), frame.sy(p.value)
    label = f"{metric} v{p.version}: {plain(p.value)}{' (approved)' if p.approved else ''}"
    if p.approved:
        return format_html(
            '<rect class="chart-marker-approved chart-series-{}" x="{}" y="{}" width="9" height="9">'
            "<title>{}</title></rect>",
            series % len(axes.DASHES),
            f"{x - 4.5:.1f}",
            f"{y - 4.5:.1f}",
            label,
        )
    return format_html(
        '<circle class="chart-marker chart-series-{}" cx="{}" cy="{}" r="3"><title>{}</title></circle>',
        series % len(axes.DASHES),
        f"{x:.1f}",
        f"{y:.1f}",
        label,
    )
