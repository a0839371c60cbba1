"""registry_app.mirror.reports.parse: every recognised report format, hostile input, digests (no database)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest

from registry_app.mirror.reports.parse import parse_report, verify_content_digest
from registry_app.mirror.reports.values import MAX_WARNINGS, MetricValue, ParsedReport, ReportParseError

FIXTURES = Path(__file__).parents[2] / "fixtures" / "reports"


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def by_name(report: ParsedReport) -> dict[str, MetricValue]:
    metrics = {metric.name: metric for metric in report.metrics}
    assert len(metrics) == len(report.metrics), "metric names are expected to be unique in this report"
    return metrics


# --------------------------------------------------------------------------------------------- documented formats


def test_binary_classification_verbatim_example() -> None:
    report = parse_report(load("binary_classification.json"))

    assert report.kind == "binary_classification"
    assert report.warnings == []
    metrics = by_name(report)
    assert sorted(metrics) == sorted(
        [
            "accuracy",
            "accuracy_best_constant_classifier",
            "auc",
            "f0_5",
            "f0_5_best_constant_classifier",
            "f1",
            "f1_best_constant_classifier",
            "f2",
            "f2_best_constant_classifier",
            "false_negative_rate",
            "false_positive_rate",
            "precision",
            "precision_best_constant_classifier",
            "recall",
            "recall_best_constant_classifier",
            "true_negative_rate",
            "true_positive_rate",
        ]
    )
    assert metrics["auc"] == MetricValue("auc", 1.0, 0.1, "binary_classification")
    assert metrics["accuracy"] == MetricValue("accuracy", 0.5, None, "binary_classification")  # "NaN" std
    assert metrics["accuracy_best_constant_classifier"].standard_deviation == 0.2
    assert metrics["false_positive_rate"].value == pytest.approx(0.66666666666667)
    assert metrics["false_negative_rate"].value == 0.0
    assert all(m.kind == "binary_classification" and m.facet == "" and m.stage == "" for m in report.metrics)


def test_binary_classification_curves() -> None:
    report = parse_report(load("binary_classification.json"))

    assert set(report.curves) == {"roc", "precision_recall"}
    roc = report.curves["roc"]
    assert roc == {
        "x": [0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
        "y": [0.0, 0.25, 0.5, 0.75, 1.0, 1.0],
        "x_label": "False positive rate",
        "y_label": "True positive rate",
    }
    pr = report.curves["precision_recall"]
    assert len(pr["x"]) == len(pr["y"]) == 5
    assert pr["x"] == [0.0, 0.25, 0.5, 0.75, 1.0]  # recalls on x
    assert pr["y"] == [1.0] * 5  # precisions on y
    assert (pr["x_label"], pr["y_label"]) == ("Recall", "Precision")


def test_binary_confusion_matrix_rows_are_actual_columns_predicted() -> None:
    report = parse_report(load("binary_classification.json"))

    # File: {"0": {"0": 1, "1": 2}, "1": {"0": 0, "1": 1}} keyed actual -> predicted.
    assert report.confusion_matrix == {"labels": ["0", "1"], "matrix": [[1, 2], [0, 1]]}
    (tn, fp), (fn, tp) = report.confusion_matrix["matrix"]
    # Cross-check the orientation against the rates in the same file.
    assert fp / (fp + tn) == pytest.approx(by_name(report)["false_positive_rate"].value)
    assert tp / (tp + fn) == pytest.approx(by_name(report)["recall"].value)


def test_regression_with_nan_standard_deviation() -> None:
    report = parse_report(load("regression_nan_std.json"))

    assert report.kind == "regression"
    assert [m.name for m in report.metrics] == ["mae", "mse", "rmse", "r2"]
    assert [m.standard_deviation for m in report.metrics] == [None, None, None, None]
    assert by_name(report)["r2"].value == pytest.approx(-1.3766111872212665)
    assert report.curves == {}
    assert report.confusion_matrix is None
    assert report.warnings == []


def test_pipelines_evaluation_json() -> None:
    report = parse_report(load("pipelines_evaluation.json"))

    assert report == ParsedReport(
        kind="regression",
        metrics=[MetricValue("mse", 4.632785, 2.152395, "regression")],
        curves={},
        confusion_matrix=None,
        warnings=[],
    )


def test_multiclass_labels_sorted_numerically_and_missing_cells_zero() -> None:
    report = parse_report(load("multiclass.json"))

    assert report.kind == "multiclass_classification"
    assert report.confusion_matrix == {
        "labels": ["2", "9", "10"],  # numeric order, not "10" < "2"
        "matrix": [
            [1180, 510, 0],  # actual 2 (never predicted 10 -> 0)
            [268, 138, 12],  # actual 9
            [3, 7, 40],  # actual 10
        ],
    }
    metrics = by_name(report)
    assert len(metrics) == 7
    assert metrics["accuracy"].value == pytest.approx(0.6288167938931297)
    assert metrics["weighted_f1"].standard_deviation is None
    assert metrics["weighted_precision"].standard_deviation == pytest.approx(0.0041)


def test_non_numeric_labels_sort_as_text() -> None:
    body = {"multiclass_classification_metrics": {"confusion_matrix": {"dog": {"cat": 2, "dog": 5}, "cat": {"cat": 7}}}}
    report = parse_report(json.dumps(body))

    assert report.confusion_matrix == {"labels": ["cat", "dog"], "matrix": [[7, 0], [2, 5]]}
    assert report.metrics == []


def test_clarify_bias_verbatim_example() -> None:
    report = parse_report(load("clarify_bias.json"))

    assert report.kind == "clarify_bias"
    assert report.warnings == []
    assert report.metrics == [
        MetricValue(
            "AD",
            -0.11415724421435,
            None,
            "clarify_bias",
            facet="Gender=0",
            stage="post_training",
            description="Accuracy Difference (AD)",
        ),
        MetricValue(
            "AD",
            -0.1141572442143538,
            None,
            "clarify_bias",
            facet="Gender=1",
            stage="post_training",
            description="Accuracy Difference (AD)",
        ),
        MetricValue(
            "CDDL",
            0.21491590864936,
            None,
            "clarify_bias",
            facet="Gender=0",
            stage="pre_training",
            description="Conditional Demographic Disparity in Labels (CDDL)",
        ),
    ]


def test_clarify_bias_null_and_non_finite_values_become_none() -> None:
    body = (
        '{"post_training_bias_metrics": {"label": "Target", "label_value_or_threshold": "1", "facets": {"Age": ['
        '{"value_or_threshold": 40, "metrics": ['
        '{"name": "DI", "description": "Disparate Impact (DI)", "value": null},'
        '{"name": "DPPL", "value": NaN},'
        '{"name": "DCR", "value": Infinity},'
        '{"name": "RD", "value": "high"},'
        '{"description": "no name", "value": 0.1}'
        "]}]}}}"
    )
    report = parse_report(body)

    assert report.kind == "clarify_bias"
    assert [(m.name, m.value, m.facet, m.stage) for m in report.metrics] == [
        ("DI", None, "Age=40", "post_training"),
        ("DPPL", None, "Age=40", "post_training"),
        ("DCR", None, "Age=40", "post_training"),
    ]
    assert any("RD" in w and "not a number" in w for w in report.warnings)
    assert any("has no name" in w for w in report.warnings)


def test_clarify_explainability_global_shap() -> None:
    report = parse_report(load("clarify_explainability.json"))

    assert report.kind == "clarify_explainability"
    assert [(m.name, m.value, m.facet, m.kind) for m in report.metrics] == [
        ("shap:feature_0", 0.022486410860333206, "label0", "clarify_explainability"),
        ("shap:feature_1", 0.007381025261958729, "label0", "clarify_explainability"),
        ("shap:feature_2", 0.006843906804137847, "label0", "clarify_explainability"),
    ]
    assert report.warnings == []


def test_clarify_analysis_with_bias_and_explanations_collects_both() -> None:
    document = json.loads(load("clarify_bias.json"))
    document.update(json.loads(load("clarify_explainability.json")))
    report = parse_report(json.dumps(document))

    assert report.kind == "clarify_bias"
    assert {m.kind for m in report.metrics} == {"clarify_bias", "clarify_explainability"}
    assert len(report.metrics) == 6


def test_pdp_numerical_feature_becomes_curve_per_label() -> None:
    body = {
        "explanations": {
            "pdp": [
                {
                    "feature_name": "age",
                    "data_type": "numerical",
                    "feature_values": [20, 40, 60],
                    "data_distribution": [0.3, 0.5, 0.2],
                    "model_predictions": [[0.1, 0.2, 0.4]],
                    "label_headers": ["default"],
                },
                {"feature_name": "city", "data_type": "categorical", "feature_values": ["a"]},
            ]
        }
    }
    report = parse_report(json.dumps(body))

    assert report.kind == "clarify_explainability"
    assert report.curves == {
        "pdp:age:default": {"x": [20.0, 40.0, 60.0], "y": [0.1, 0.2, 0.4], "x_label": "age", "y_label": "default"}
    }
    assert any("city" in w for w in report.warnings)


def test_model_card_metric_groups_report() -> None:
    report = parse_report(load("model_card_metrics.json"))

    assert report.kind == "model_card_metrics"
    assert [(m.name, m.value, m.facet, m.description) for m in report.metrics] == [
        ("auc", 0.83, "", "holdout set"),
        ("recall_by_segment", 0.71, "retail", ""),
        ("recall_by_segment", 0.64, "sme", ""),
        ("rmse", 1.25, "", ""),
    ]
    assert all(m.kind == "model_card_metrics" for m in report.metrics)
    assert report.confusion_matrix == {"labels": ["0", "1"], "matrix": [[900, 50], [40, 110]]}
    assert report.curves == {"roc": {"x": [0.0, 0.1, 1.0], "y": [0.0, 0.6, 1.0], "x_label": "fpr", "y_label": "tpr"}}
    # string and boolean simple metrics are not numbers: skipped, with a reason.
    assert len(report.warnings) == 2
    assert "threshold_policy" in report.warnings[0]
    assert "calibrated" in report.warnings[1]


def test_model_card_matrix_with_different_axes_keeps_column_labels() -> None:
    body = {
        "metric_groups": [
            {
                "name": "g",
                "metric_data": [
                    {
                        "name": "m",
                        "type": "matrix",
                        "value": [[1, 2, 3], [4, 5, 6]],
                        "x_axis_name": ["a", "b"],
                        "y_axis_name": ["x", "y", "z"],
                    }
                ],
            }
        ]
    }
    report = parse_report(json.dumps(body))

    assert report.confusion_matrix == {
        "labels": ["a", "b"],
        "column_labels": ["x", "y", "z"],
        "matrix": [[1, 2, 3], [4, 5, 6]],
    }


def test_model_card_matrix_reordered_numerically() -> None:
    item = {"name": "cm", "type": "matrix", "value": [[1, 2], [3, 4]], "x_axis_name": ["10", "2"]}
    item["y_axis_name"] = ["10", "2"]
    report = parse_report(json.dumps({"metric_groups": [{"name": "g", "metric_data": [item]}]}))

    assert report.confusion_matrix == {"labels": ["2", "10"], "matrix": [[4, 3], [2, 1]]}


def test_sdk_style_curve_names_map_to_roc_and_precision_recall() -> None:
    data = [
        {"name": "receiver_operating_characteristic_curve", "type": "linear_graph", "value": [[0, 0], [1, 1]]},
        {"name": "precision_recall_curve", "type": "linear_graph", "value": [[0, 1], [1, 0.5]]},
        {"name": "lift", "type": "linear_graph", "value": [[0, 1], [1, 2]]},
    ]
    report = parse_report(json.dumps({"metric_groups": [{"name": "g", "metric_data": data}]}))

    assert sorted(report.curves) == ["lift", "precision_recall", "roc"]
    assert report.curves["lift"]["x_label"] == "x"


# --------------------------------------------------------------------------------------------- shapes and wrappers


def test_bare_numbers_and_several_sections_are_all_collected() -> None:
    body = {
        "regression_metrics": {"mse": 4.2, "mae": {"value": 1.5}},
        "binary_classification_metrics": {"auc": 0.9},
    }
    report = parse_report(json.dumps(body))

    assert report.kind == "binary_classification"
    assert [(m.name, m.value, m.standard_deviation, m.kind) for m in report.metrics] == [
        ("mse", 4.2, None, "regression"),
        ("mae", 1.5, None, "regression"),
        ("auc", 0.9, None, "binary_classification"),
    ]


def test_sections_nested_one_level_down() -> None:
    body = {"evaluation": {"regression_metrics": {"rmse": {"value": 2.0, "standard_deviation": 0.5}}}, "run": "42"}
    report = parse_report(json.dumps(body))

    assert report.kind == "regression"
    assert report.metrics == [MetricValue("rmse", 2.0, 0.5, "regression")]


def test_sections_two_levels_down_are_not_recognised() -> None:
    body = {"a": {"b": {"regression_metrics": {"mse": 1}}}}
    with pytest.raises(ReportParseError, match=r"no recognised metrics section \(found keys: a\)"):
        parse_report(json.dumps(body))


def test_utf8_bom_is_tolerated_in_bytes_and_text() -> None:
    text = '{"regression_metrics": {"mse": 1.0}}'
    assert parse_report(b"\xef\xbb\xbf" + text.encode()).metrics[0].value == 1.0
    assert parse_report("\ufeff" + text).metrics[0].value == 1.0


def test_recognised_section_of_wrong_type_gives_unknown_kind_with_warning() -> None:
    report = parse_report('{"regression_metrics": "n/a"}')

    assert report.kind == "unknown"
    assert report.metrics == []
    assert report.warnings == ["regression_metrics: is a string, expected an object; skipped"]


# --------------------------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "report is empty"),
        (b"   \n", "report is empty"),
        ('{\n  "a": 1,\n    oops\n}', "not valid JSON at line 3 column 5"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b"[1, 2, 3]", "top-level JSON is a list, expected an object"),
        (b'"just text"', "top-level JSON is a string, expected an object"),
        (b"null", "top-level JSON is null, expected an object"),
        (b"42", "top-level JSON is a number, expected an object"),
        (b'{"version": "1.0", "dataset": {}}', r"no recognised metrics section \(found keys: version, dataset\)"),
        (b"{}", r"no recognised metrics section \(found keys: none\)"),
    ],
)
def test_unreadable_reports_raise_clear_errors(body: bytes | str, message: str) -> None:
    with pytest.raises(ReportParseError, match=message):
        parse_report(body)


def test_report_parse_error_is_a_value_error() -> None:
    assert issubclass(ReportParseError, ValueError)


def test_deeply_nested_junk_raises_parse_error_not_recursion_error() -> None:
    body = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ReportParseError, match="nested too deeply"):
        parse_report(body)


def test_deeply_nested_junk_inside_a_section_is_skipped() -> None:
    junk: object = 1
    for _ in range(500):
        junk = {"x": junk}
    report = parse_report(json.dumps({"regression_metrics": {"mse": 1.0, "junk": junk}}))

    assert [m.name for m in report.metrics] == ["mse"]
    assert report.warnings == ["regression_metrics.junk: no value; skipped"]


def test_non_finite_and_huge_numbers_become_none() -> None:
    body = (
        '{"regression_metrics": {'
        '"nan": {"value": NaN, "standard_deviation": Infinity},'
        '"inf": {"value": -Infinity},'
        '"overflow": {"value": 1e999},'
        '"bigint": {"value": ' + "9" * 5000 + "},"
        '"big": {"value": 1.5e308, "standard_deviation": "-inf"},'
        '"nan_string": {"value": "NaN"}'
        "}}"
    )
    report = parse_report(body)

    values = {m.name: (m.value, m.standard_deviation) for m in report.metrics}
    assert values == {
        "nan": (None, None),
        "inf": (None, None),
        "overflow": (None, None),
        "bigint": (None, None),
        "big": (1.5e308, None),
        "nan_string": (None, None),
    }
    assert all(not isinstance(m.value, float) or math.isfinite(m.value) for m in report.metrics)


def test_strings_and_other_non_numbers_are_skipped_with_warnings() -> None:
    body = {
        "binary_classification_metrics": {
            "auc": {"value": "0.9"},
            "f1": {"value": True},
            "recall": {"value": [0.5]},
            "precision": {"value": 0.5, "standard_deviation": "wide"},
            "accuracy": "high",
            "true_positive_rate": {"value": 0.75},
        }
    }
    report = parse_report(json.dumps(body))

    assert [(m.name, m.value, m.standard_deviation) for m in report.metrics] == [
        ("precision", 0.5, None),
        ("true_positive_rate", 0.75, None),
    ]
    assert report.warnings == [
        "binary_classification_metrics.auc: value is a string, not a number; skipped",
        "binary_classification_metrics.f1: value is a boolean, not a number; skipped",
        "binary_classification_metrics.recall: value is a list, not a number; skipped",
        "binary_classification_metrics.precision: standard deviation is a string, not a number; ignored",
        "binary_classification_metrics.accuracy: value is a string, not a number; skipped",
    ]


def test_metric_with_null_value_is_kept_as_none_with_warning() -> None:
    report = parse_report('{"regression_metrics": {"mse": {"value": null, "standard_deviation": null}}}')

    assert report.metrics == [MetricValue("mse", None, None, "regression")]
    assert report.warnings == ["regression_metrics.mse: value is missing or not finite"]


def test_script_tags_survive_as_plain_text() -> None:
    evil = "<script>alert(1)</script>"
    body = {
        "binary_classification_metrics": {evil: {"value": 0.5}, "confusion_matrix": {evil: {evil: 3}}},
        "post_training_bias_metrics": {
            "facets": {
                evil: [{"value_or_threshold": evil, "metrics": [{"name": evil, "description": evil, "value": 1}]}]
            }
        },
        "explanations": {"kernel_shap": {evil: {"global_shap_values": {evil: 0.1}}}},
    }
    report = parse_report(json.dumps(body))

    names = [m.name for m in report.metrics]
    assert names == [evil, evil, f"shap:{evil}"]
    bias = report.metrics[1]
    assert bias.facet == f"{evil}={evil}"
    assert bias.description == evil
    assert report.metrics[2].facet == evil
    assert report.confusion_matrix == {"labels": [evil], "matrix": [[3]]}


def test_lone_surrogates_are_replaced_so_text_is_utf8_encodable() -> None:
    report = parse_report('{"regression_metrics": {"ms\\ud800e": 1.0}}')

    assert report.metrics[0].name == "ms?e"
    report.metrics[0].name.encode("utf-8")


def test_curve_with_junk_points_keeps_only_finite_pairs() -> None:
    body = {
        "binary_classification_metrics": {
            "receiver_operating_characteristic_curve": {
                "false_positive_rates": [0, "x", 0.5, None, 1, 2],
                "true_positive_rates": [0, 0.2, 0.7, 0.8, 1],
            },
            "precision_recall_curve": {"recalls": "none", "precisions": []},
        }
    }
    report = parse_report(json.dumps(body))

    assert report.curves == {
        "roc": {
            "x": [0.0, 0.5, 1.0],
            "y": [0.0, 0.7, 1.0],
            "x_label": "False positive rate",
            "y_label": "True positive rate",
        }
    }
    assert len(report.warnings) == 3  # length mismatch, dropped points, unusable PR curve


def test_confusion_matrix_with_bad_counts() -> None:
    body = {"binary_classification_metrics": {"confusion_matrix": {"0": {"0": "many", "1": 2.5}, "1": [1, 2]}}}
    report = parse_report(json.dumps(body))

    assert report.confusion_matrix == {"labels": ["0", "1"], "matrix": [[None, 2.5], [0, 0]]}
    assert len(report.warnings) == 2


def test_oversized_confusion_matrix_is_skipped() -> None:
    matrix = {str(i): {str(i): 1} for i in range(201)}
    report = parse_report(json.dumps({"multiclass_classification_metrics": {"confusion_matrix": matrix}}))

    assert report.confusion_matrix is None
    assert "201 classes" in report.warnings[0]


def test_warnings_are_capped() -> None:
    body = {"regression_metrics": {f"m{i}": "bad" for i in range(500)}}
    report = parse_report(json.dumps(body))

    assert len(report.warnings) == MAX_WARNINGS + 1
    assert report.warnings[-1] == f"{500 - MAX_WARNINGS} more warnings not shown"


def test_non_bytes_body_is_rejected() -> None:
    with pytest.raises(ReportParseError, match="bytes or text"):
        parse_report(123)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------- digests

BODY = b'{"regression_metrics": {"mse": {"value": 4.632785, "standard_deviation": 2.152395}}}'
SHA256 = hashlib.sha256(BODY).hexdigest()
MD5 = hashlib.md5(BODY).hexdigest()


@pytest.mark.parametrize(
    "declared",
    [f"sha256:{SHA256}", f"SHA256:{SHA256.upper()}", SHA256, SHA256.upper(), f"  sha256:{SHA256}\n", f"md5:{MD5}", MD5],
)
def test_digest_matches(declared: str) -> None:
    assert verify_content_digest(BODY, declared) is True


@pytest.mark.parametrize("declared", [f"sha256:{'0' * 64}", "f" * 64, f"md5:{'0' * 32}", "a" * 32])
def test_digest_mismatch(declared: str) -> None:
    assert verify_content_digest(BODY, declared) is False


def test_digest_of_modified_body_does_not_match() -> None:
    assert verify_content_digest(BODY + b" ", f"sha256:{SHA256}") is False


@pytest.mark.parametrize(
    "declared",
    ["", "sha1:" + "0" * 40, "0" * 40, "sha256:" + "0" * 63, "sha256:" + "z" * 64, "crc32:deadbeef", "sha256:", None],
)
def test_digest_in_unknown_form_cannot_be_checked(declared: str) -> None:
    assert verify_content_digest(BODY, declared) is None
