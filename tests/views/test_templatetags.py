"""The presentational helpers in registry_app.templatetags.registry_tags."""

from __future__ import annotations

import datetime as dt

import pytest
from django.template import Context, Template

from registry_app.templatetags import registry_tags as tags

XSS = "<script>alert(1)</script>"


@pytest.mark.parametrize(
    ("status", "css"),
    [
        ("PendingManualApproval", "badge badge-pending"),
        ("Approved", "badge badge-approved"),
        ("Rejected", "badge badge-rejected"),
        ("deleted", "badge badge-deleted"),
        ("running", "badge badge-running"),
        ("fetch_error", "badge badge-rejected"),
        ("SomethingNew", "badge badge-neutral"),
        (None, "badge badge-neutral"),
    ],
)
def test_badge_class(status: str | None, css: str) -> None:
    assert tags.badge_class(status) == css


def test_status_badge_escapes_and_labels() -> None:
    assert str(tags.status_badge("PendingManualApproval")) == '<span class="badge badge-pending">Pending</span>'
    assert "&lt;script&gt;" in str(tags.status_badge(XSS))
    assert "muted" in str(tags.status_badge(""))


@pytest.mark.parametrize(
    ("context", "shown"),
    [
        ({"IamIdentity": {"Arn": "arn:aws:sts::1:assumed-role/R/alice", "SourceIdentity": "alice"}}, "alice"),
        ({"IamIdentity": {"Arn": "arn:aws:sts::1:assumed-role/R/bob"}}, "arn:aws:sts::1:assumed-role/R/bob"),
        ({"UserProfileName": "ds-1", "DomainId": "d-1"}, "ds-1"),
        ({"IamIdentity": {"PrincipalId": "AROA:x"}}, "AROA:x"),
        ({}, "—"),
        (None, "—"),
    ],
)
def test_principal(context: object, shown: str) -> None:
    assert tags.principal(context) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.912, "0.912"),
        (0.91234, "0.9123"),
        (4.632785, "4.6328"),
        (-0.1141572442143538, "-0.1142"),
        (1.0, "1"),
        (12345.0, "12,345"),
        (0.00001234, "0.00001234"),  # never scientific notation
        (0.0002, "0.0002"),
        (12345678901.5, "12,345,678,901.5"),
        (float("nan"), "—"),
        (None, "—"),
        ("n/a", "n/a"),
    ],
)
def test_num(value: object, shown: str) -> None:
    assert tags.num(value) == shown


def test_headline_and_duration() -> None:
    class M:
        name, value = "auc", 0.912

    assert tags.headline(M()) == "auc 0.912"
    assert tags.duration(3.25) == "3.2 s"
    assert tags.duration(125) == "2 min 05 s"
    assert tags.duration(3 * 3600 + 60) == "3 h 01 min"
    assert tags.duration(None) == "—"


def test_when_renders_time_element() -> None:
    html = str(tags.when(dt.datetime(2025, 3, 14, 9, 30, tzinfo=dt.UTC)))
    assert html.startswith('<time datetime="2025-03-14T09:30:00+00:00"')
    assert ">2025-03-14 09:30</time>" in html
    assert tags.when(None) == "—"


def test_tag_pairs_accepts_maps_and_aws_lists() -> None:
    assert tags.tag_pairs({"b": "2", "a": None}) == [("a", ""), ("b", "2")]
    assert tags.tag_pairs([{"Key": "team", "Value": "risk"}]) == [("team", "risk")]
    assert tags.tag_pairs("junk") == []


def test_calls_by_operation_busiest_first() -> None:
    assert tags.calls_by_operation({"Search": 3, "Describe": 12, "bad": "x"}) == [("Describe", 12), ("Search", 3)]


def test_curve_chart_plots_numbers_and_escapes_labels() -> None:
    svg = str(tags.curve_chart({"x": [0, 0.5, 1, "bad"], "y": [0, 0.8, 1, 2], "x_label": XSS, "y_label": "tpr"}))
    assert svg.startswith("<svg")
    assert "&lt;script&gt;" in svg and "<script>" not in svg
    points = svg.split('class="chart-line chart-line-current" points="', 1)[1].split('"', 1)[0]
    assert len(points.split()) == 3  # the "bad" point is dropped
    assert "No plottable points" in str(tags.curve_chart({"x": [], "y": []}))


@pytest.mark.parametrize(
    "matrix",
    [
        {
            "labels_x": ["0", "1"],
            "labels_y": ["0", "1"],
            "matrix": [[900, 50], [40, None]],
        },  # registry_app.mirror.cards
        {"labels": ["0", "1"], "matrix": [[900, 50], [40, None]]},  # registry_app.mirror.reports.charts
    ],
)
def test_matrix_table_reads_both_shapes(matrix: dict) -> None:
    html = Template("{% load registry_tags %}{% matrix_table m 'cm' %}").render(Context({"m": matrix}))
    assert "<caption>cm</caption>" in html
    assert ">900<" in html and ">50<" in html and ">—<" in html


def test_matrix_table_escapes_labels() -> None:
    html = Template("{% load registry_tags %}{% matrix_table m %}").render(
        Context({"m": {"labels": [XSS, "b"], "matrix": [[1, 2], [3, 4]]}})
    )
    assert "&lt;script&gt;" in html and "<script>" not in html


def test_curve_title() -> None:
    assert tags.curve_title("roc") == "ROC curve"
    assert tags.curve_title("roc_2") == "ROC curve (2)"
    assert tags.curve_title("lift_chart") == "Lift chart"
