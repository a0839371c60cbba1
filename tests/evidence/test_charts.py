"""Server-side SVG charts: parsed with ElementTree, as a browser would read them."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from django.template import Context, Template
from hypothesis import given, settings
from hypothesis import strategies as st

from registry_app.evidence.curves import series, stated_area, trapezoid_auc
from registry_app.evidence.matrix import BINARY_NOTE, confusion_view
from registry_app.evidence.trend import Trend, TrendPoint, chart_groups, trend_svg, trends
from registry_app.templatetags.registry_tags import curve_chart

NS = {"svg": "http://www.w3.org/2000/svg"}
ROC = {"x": [0.0, 0.1, 0.3, 1.0], "y": [0.0, 0.6, 0.85, 1.0], "x_label": "False positive rate", "y_label": "TPR"}
OLD_ROC = {"x": [0.0, 0.2, 1.0], "y": [0.0, 0.6, 1.0], "x_label": "False positive rate", "y_label": "TPR"}
XSS = "<script>alert(1)</script>"


def parse(svg: object) -> ET.Element:
    return ET.fromstring(str(svg))


def texts(root: ET.Element, css: str) -> list[str]:
    return [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text") if css in (t.get("class") or "")]


def test_trapezoid_auc() -> None:
    assert trapezoid_auc([(0, 0), (1, 1)]) == pytest.approx(0.5)
    assert trapezoid_auc([(1, 1), (0, 0), (0, 1)]) == pytest.approx(1.0)  # sorted by x first
    # ROC above: 0.1*0.3 + 0.2*0.725 + 0.7*0.925
    assert trapezoid_auc([(0.0, 0.0), (0.1, 0.6), (0.3, 0.85), (1.0, 1.0)]) == pytest.approx(0.8225)
    assert trapezoid_auc([(0.5, 0.5)]) is None


def test_a_stated_area_wins_over_the_trapezoid() -> None:
    assert stated_area("roc", {"auc": 0.91}) == 0.91
    assert stated_area("precision_recall_2", {"auc": 0.91, "pr_auc": 0.7}) == 0.7
    assert stated_area("roc", {}) is None
    line = series("This version", ROC, 0.91)
    assert line is not None and line.legend == "This version, AUC 0.91 (reported)"


def test_curve_chart_is_readable_svg_with_ticks_legend_and_overlay() -> None:
    root = parse(curve_chart(ROC, "ROC curve", baseline=OLD_ROC, baseline_label="Approved v3"))
    width = float(root.get("viewBox", "").split()[2])
    assert width >= 360 and root.get("role") == "img"
    ticks = ["0", "0.2", "0.4", "0.6", "0.8", "1"]
    assert texts(root, "chart-tick-x") == ticks and texts(root, "chart-tick-y") == ticks
    assert texts(root, "chart-axis") == ["False positive rate", "TPR"]
    assert texts(root, "chart-legend") == [
        "This version, AUC 0.8225 (trapezoid)",
        "Approved v3, AUC 0.7 (trapezoid)",
    ]
    lines = {p.get("class"): p for p in root.iter("{http://www.w3.org/2000/svg}polyline")}
    overlay = lines["chart-line chart-line-baseline"]
    assert overlay.get("stroke-dasharray")  # a pattern, not only a colour
    assert lines["chart-line chart-line-current"].get("stroke-dasharray") is None
    assert root.find("svg:line[@class='chart-chance']", NS) is not None
    assert "style" not in str(curve_chart(ROC))  # CSP: no inline styles


def test_curve_chart_escapes_labels_and_drops_bad_points() -> None:
    svg = str(curve_chart({"x": [0, 0.5, "1", None], "y": [0, 0.8, 1, 1], "x_label": XSS}, XSS))
    root = parse(svg)  # still well-formed XML
    assert "<script>" not in svg and XSS in texts(root, "chart-axis")
    points = root.find("svg:polyline", NS).get("points", "").split()  # type: ignore[union-attr]
    assert len(points) == 2


def test_confusion_matrix_counts_percentages_and_labels() -> None:
    view = confusion_view({"labels": ["0", "1"], "matrix": [[880, 20], [35, 65]]}, "binary_classification")
    assert view is not None
    assert view.columns == ["negative (0)", "positive (1)"] and view.note == BINARY_NOTE
    label, cells, total = view.rows[0]
    assert label == "negative (0)" and total == "900"
    assert (cells[0].count, cells[0].percent, cells[0].hit) == ("880", "97.8 %", True)
    assert (cells[1].count, cells[1].percent, cells[1].hit) == ("20", "2.2 %", False)


def test_confusion_matrix_keeps_the_reports_labels() -> None:
    view = confusion_view({"labels": ["no default", "default"], "matrix": [[1, 0], [0, 1]]}, "binary_classification")
    assert view is not None and view.columns == ["no default", "default"] and view.note == ""
    multiclass = confusion_view({"labels": ["0", "1"], "matrix": [[1, 1], [0, 2]]}, "multiclass_classification")
    assert multiclass is not None and multiclass.columns == ["0", "1"]  # only a binary report says 0 is negative
    html = Template("{% load registry_tags %}{% matrix_table m 'cm' k %}").render(
        Context({"m": {"labels": ["0", "1"], "matrix": [[3, 1], [None, 4]]}, "k": "binary_classification"})
    )
    assert "<caption>cm</caption>" in html and "75 %" in html and ">—<" in html and "negative (0)" in html


def test_trend_chart_marks_approved_versions() -> None:
    found = trends(
        [
            (3, True, [("auc", 0.88), ("f1", 0.7)]),
            (1, False, [("AUC", 0.85), ("f1", float("nan"))]),
            (5, False, [("auc", 0.9), ("mse", 4.2)]),
        ]
    )
    assert [t.metric for t in found] == ["auc", "f1", "mse"]
    assert [p.version for p in found[0].points] == [1, 3, 5]
    groups = chart_groups(found)
    assert [[t.metric for t in g] for g in groups] == [["auc", "f1"], ["mse"]]  # mse on its own scale
    root = parse(trend_svg(groups[0], "Trend"))
    assert len(root.findall("svg:polyline", NS)) == 2
    dashes = {p.get("stroke-dasharray") for p in root.findall("svg:polyline", NS)}
    assert len(dashes) == 2  # each line its own pattern
    rects = root.iter("{http://www.w3.org/2000/svg}rect")
    approved = [r for r in rects if "chart-marker-approved" in r.get("class", "")]
    assert len(approved) == 2 + 1  # auc and f1 at v3, plus the legend swatch
    assert texts(root, "chart-tick-x") == ["v1", "v3 ✓", "v5"]
    assert texts(root, "chart-legend")[-1].startswith("Approved version")


def test_trend_chart_escapes_metric_names() -> None:
    svg = str(trend_svg([Trend(XSS, [TrendPoint(1, 0.5, False), TrendPoint(2, 0.6, True)])], XSS))
    parse(svg)
    assert "<script>" not in svg


_FLOATS = (
    st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**20), 10**20) | st.none() | st.text(max_size=3)
)


@settings(max_examples=300, deadline=None)
@given(xs=st.lists(_FLOATS, max_size=12), ys=st.lists(_FLOATS, max_size=12), base=st.booleans())
def test_any_curve_renders_well_formed_svg_or_a_note(xs: list, ys: list, base: bool) -> None:
    curve = {"x": xs, "y": ys}
    html = str(curve_chart(curve, "t", baseline=curve if base else None))
    if html.startswith("<svg"):
        parse(html)
    else:
        assert "No plottable points" in html


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=8))
def test_any_trend_renders_well_formed_svg(values: list[float]) -> None:
    found = trends([(v, v % 2 == 0, [("m", value)]) for v, value in enumerate(values, start=1)])
    for group in chart_groups(found):
        parse(trend_svg(group, "t"))
