"""The frame every server-side SVG chart shares: a plot area, "nice" ticks with grid lines and labels,
axis titles and a legend. Everything is built with ``format_html`` so text from the registry (metric names,
labels) is escaped; only numbers we computed go into coordinates. No inline styles (CSP): presentation is
by class, and line patterns use the ``stroke-dasharray`` attribute so they never rely on colour alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from registry_app.evidence.numbers import plain

# Line patterns, in order: solid, dashed, dotted, dash-dot...; a legend swatch repeats the pattern.
DASHES = ("", "8 4", "2 3", "10 3 2 3", "4 4", "12 4")


@dataclass(frozen=True)
class Frame:
    """A plot area inside a ``width`` × ``height`` viewBox, mapping data (x0..x1, y0..y1) to pixels."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    x0: float
    x1: float
    y0: float
    y1: float

    @property
    def inner_w(self) -> int:
        return self.width - self.left - self.right

    @property
    def inner_h(self) -> int:
        return self.height - self.top - self.bottom

    def sx(self, x: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return self.left + (x - self.x0) / span * self.inner_w

    def sy(self, y: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return self.height - self.bottom - (y - self.y0) / span * self.inner_h

    def points(self, pairs: Iterable[tuple[float, float]]) -> str:
        return " ".join(f"{self.sx(x):.1f},{self.sy(y):.1f}" for x, y in pairs)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering ``low``..``high`` (``0, 0.2 … 1`` for the unit interval).

    Always at least two ascending finite values, whatever the input (a single value, values near the
    float limits, NaN): a chart never fails on what a report holds.
    """
    finite = [v for v in (low, high) if math.isfinite(v)]
    if not finite:
        return [0.0, 1.0]
    low, high = min(finite), max(finite)
    if high - low <= abs(low) * 1e-9 or not math.isfinite(high - low):
        pad = max(abs(low) * 0.1, 1.0)
        low, high = low - pad, high + pad
    span = high - low
    if not (math.isfinite(low) and math.isfinite(high) and math.isfinite(span)) or span <= 0:
        return [low, high] if math.isfinite(low) and math.isfinite(high) and high > low else [-1.0, 1.0]
    raw = span / max(count, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = float(math.floor(low / step + 1e-9)) * step
    ticks: list[float] = []
    value = start
    while value <= high + step * 1e-6 and len(ticks) < 50 and math.isfinite(value):
        ticks.append(round(value, 12))
        value += step
    return ticks if len(ticks) >= 2 else [low, high]


def grid(
    frame: Frame, x_ticks: list[float], y_ticks: list[float], x_label: Callable[[float], str] = plain
) -> SafeString:
    """Grid lines, tick marks and tick labels for both axes, and the plot frame."""
    bottom = frame.height - frame.bottom
    parts = [
        format_html(
            '<rect class="chart-frame" x="{}" y="{}" width="{}" height="{}"></rect>',
            frame.left,
            frame.top,
            frame.inner_w,
            frame.inner_h,
        )
    ]
    for x in x_ticks:
        px = f"{frame.sx(x):.1f}"
        parts.append(
            format_html(
                '<line class="chart-grid" x1="{px}" y1="{top}" x2="{px}" y2="{bottom}"></line>'
                '<line class="chart-tickmark" x1="{px}" y1="{bottom}" x2="{px}" y2="{b5}"></line>'
                '<text class="chart-tick chart-tick-x" x="{px}" y="{ty}" text-anchor="middle">{label}</text>',
                px=px,
                top=frame.top,
                bottom=bottom,
                b5=bottom + 5,
                ty=bottom + 17,
                label=x_label(x),
            )
        )
    for y in y_ticks:
        py = f"{frame.sy(y):.1f}"
        parts.append(
            format_html(
                '<line class="chart-grid" x1="{left}" y1="{py}" x2="{right}" y2="{py}"></line>'
                '<line class="chart-tickmark" x1="{l5}" y1="{py}" x2="{left}" y2="{py}"></line>'
                '<text class="chart-tick chart-tick-y" x="{tx}" y="{ty}" text-anchor="end">{label}</text>',
                py=py,
                left=frame.left,
                right=frame.width - frame.right,
                l5=frame.left - 5,
                tx=frame.left - 8,
                ty=f"{frame.sy(y) + 4:.1f}",
                label=plain(y, 3),
            )
        )
    return join(parts)


def axis_titles(frame: Frame, x_title: str, y_title: str) -> SafeString:
    middle_y = frame.top + frame.inner_h / 2
    return format_html(
        '<text class="chart-axis" x="{xc}" y="{xy}" text-anchor="middle">{x}</text>'
        '<text class="chart-axis" x="14" y="{yc}" text-anchor="middle" transform="rotate(-90 14 {yc})">{y}</text>',
        xc=f"{frame.left + frame.inner_w / 2:.1f}",
        xy=frame.height - frame.bottom + 36,
        x=x_title,
        yc=f"{middle_y:.1f}",
        y=y_title,
    )


@dataclass(frozen=True)
class LegendEntry:
    label: str
    css: str  # line class, e.g. "chart-line chart-series-0"
    dash: str = ""
    marker: str = ""  # "" or "square" (approved versions on the trend chart)


def legend(frame: Frame, entries: list[LegendEntry]) -> SafeString:
    """One row per entry below the axis title: a short line in the entry's pattern, then its text."""
    y = frame.height - frame.bottom + 56
    rows = []
    for i, entry in enumerate(entries):
        row_y = y + i * 18
        if entry.marker == "square":
            swatch = format_html(
                '<rect class="chart-marker-approved" x="{}" y="{}" width="10" height="10"></rect>',
                frame.left + 9,
                row_y - 9,
            )
        else:
            swatch = format_html(
                '<line class="{}" x1="{}" y1="{}" x2="{}" y2="{}"{}></line>',
                entry.css,
                frame.left,
                row_y - 4,
                frame.left + 28,
                row_y - 4,
                dash_attr(entry.dash),
            )
        rows.append(
            format_html(
                '<g class="chart-legend-entry">{}<text class="chart-legend" x="{}" y="{}">{}</text></g>',
                swatch,
                frame.left + 36,
                row_y,
                entry.label,
            )
        )
    return format_html('<g class="chart-legend-box">{}</g>', join(rows))


def legend_height(entries: int) -> int:
    return 8 + 18 * max(entries, 1)


def dash_attr(dash: str) -> SafeString:
    return format_html(' stroke-dasharray="{}"', dash) if dash else format_html("{}", "")


def svg(frame: Frame, css: str, label: str, body: SafeString, desc: str = "") -> SafeString:
    return format_html(
        '<svg class="{css}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{label}" '
        'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">'
        "<title>{label}</title>{desc}{body}</svg>",
        css=css,
        w=frame.width,
        h=frame.height,
        label=label,
        desc=format_html("<desc>{}</desc>", desc) if desc else "",
        body=body,
    )


def join(parts: Iterable[SafeString]) -> SafeString:
    return format_html_join("", "{}", ((part,) for part in parts))
