"""The evidence partials the review page includes: a report's charts with the approved version's curves
overlaid (``report_charts`` + ``review.compare.baseline_curves``) and a report's metrics with their meanings."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest
from django.template import Context, Template
from django.template.loader import render_to_string

from registry_app.models import EvaluationReport, ModelPackage
from registry_app.review.compare import baseline_curves
from registry_app.review.panel import review_state
from tests.factories import EvaluationReportFactory, MetricFactory
from tests.views.test_review_support import XSS, package_in_state, persona_user

pytestmark = pytest.mark.django_db

ROC = {"x": [0.0, 0.1, 0.3, 1.0], "y": [0.0, 0.6, 0.85, 1.0], "x_label": "False positive rate", "y_label": "TPR"}
OLD_ROC = {"x": [0.0, 0.2, 1.0], "y": [0.0, 0.6, 1.0], "x_label": "False positive rate", "y_label": "TPR"}
SVG = "{http://www.w3.org/2000/svg}"


def with_curves(package: ModelPackage, curve: dict, **fields: Any) -> EvaluationReport:
    report = package.reports.get()
    EvaluationReport.objects.filter(pk=report.pk).update(curves={"roc": curve}, **fields)
    report.refresh_from_db()
    return report


def charts(report: EvaluationReport, baseline: Any) -> str:
    return Template("{% load evidence_tags %}{% report_charts report baseline %}").render(
        Context({"report": report, "baseline": baseline})
    )


def svgs(html: str) -> list[ET.Element]:
    found = []
    start = html.find("<svg")
    while start != -1:
        end = html.index("</svg>", start) + len("</svg>")
        found.append(ET.fromstring(html[start:end]))
        start = html.find("<svg", end)
    return found


def test_the_approved_versions_curve_is_overlaid(django_assert_num_queries: Any) -> None:
    approved = package_in_state("approved", version=1)
    with_curves(approved, OLD_ROC)
    pending = package_in_state("pending", version=2)
    report = with_curves(pending, ROC, confusion_matrix={"labels": ["0", "1"], "matrix": [[8, 2], [1, 9]]})
    state = review_state(pending, persona_user("viewer"))
    with django_assert_num_queries(1):  # the baseline's reports; its metrics come with the review state
        baseline = baseline_curves(state.baseline_package)
    html = charts(EvaluationReport.objects.prefetch_related("metrics").get(pk=report.pk), baseline)
    (roc,) = svgs(html)
    legend = [t.text for t in roc.iter(f"{SVG}text") if t.get("class") == "chart-legend"]
    # this version's report states auc 0.9 (package_in_state); the approved one's area is computed
    assert legend == ["This version, AUC 0.9 (reported)", "Approved v1, AUC 0.9 (reported)"]
    overlay = [p for p in roc.iter(f"{SVG}polyline") if "chart-line-baseline" in p.get("class", "")]
    assert len(overlay) == 1 and overlay[0].get("stroke-dasharray")
    assert "dashed line: approved v1" in html
    assert "negative (0)" in html and "80 %" in html  # the confusion matrix, labelled, with row percentages


def test_trapezoid_when_no_area_is_stated() -> None:
    approved = package_in_state("approved", version=1)
    with_curves(approved, OLD_ROC)
    approved.reports.get().metrics.all().delete()
    pending = package_in_state("pending", version=2)
    report = with_curves(pending, ROC)
    pending.reports.get().metrics.all().delete()
    baseline = baseline_curves(review_state(pending, persona_user("viewer")).baseline_package)
    (roc,) = svgs(charts(EvaluationReport.objects.prefetch_related("metrics").get(pk=report.pk), baseline))
    legend = [t.text for t in roc.iter(f"{SVG}text") if t.get("class") == "chart-legend"]
    assert legend == ["This version, AUC 0.8225 (trapezoid)", "Approved v1, AUC 0.7 (trapezoid)"]


def test_no_overlay_without_an_approved_version(django_assert_num_queries: Any) -> None:
    pending = package_in_state("pending", version=1)
    report = with_curves(pending, ROC)
    with django_assert_num_queries(0):
        assert baseline_curves(None) is None
    (roc,) = svgs(charts(EvaluationReport.objects.prefetch_related("metrics").get(pk=report.pk), None))
    assert not [p for p in roc.iter(f"{SVG}polyline") if "baseline" in p.get("class", "")]


def test_report_metrics_name_the_bias_metrics_and_their_fair_range() -> None:
    package = package_in_state("pending")
    bias = EvaluationReportFactory(package=package, slot="Bias.PostTrainingReport", kind="clarify_bias")
    MetricFactory(report=bias, name="DI", value=0.78, facet="Gender=0", stage="post_training", kind="clarify_bias")
    MetricFactory(report=bias, name=XSS, value=0.1, facet=XSS, kind="clarify_bias")
    report = EvaluationReport.objects.prefetch_related("metrics").get(pk=bias.pk)
    html = render_to_string("registry_app/partials/report_metrics.html", {"report": report})
    assert '<abbr class="mono" title="Disparate impact. Fair at 1; 0.8 to 1.25 is commonly accepted' in html
    assert '<td class="subtle">Disparate impact</td>' in html
    assert "<summary>What these metrics mean</summary>" in html and "(post-training bias)" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
