"""registry_app.mirror.reports.directions: which way is better for a metric, and comparing two values (no database)."""

from __future__ import annotations

import pytest

from registry_app.mirror.reports.directions import better, metric_direction


@pytest.mark.parametrize(
    ("name", "kind", "direction"),
    [
        ("auc", "binary_classification", "higher"),
        ("accuracy", "multiclass_classification", "higher"),
        ("weighted_f1", "multiclass_classification", "higher"),
        ("f0_5_best_constant_classifier", "binary_classification", "higher"),
        ("precision", "binary_classification", "higher"),
        ("recall", "binary_classification", "higher"),
        ("r2", "regression", "higher"),
        ("validation:auc", "model_card_metrics", "higher"),
        ("mse", "regression", "lower"),
        ("rmse", "regression", "lower"),
        ("MAE", "regression", "lower"),
        ("false_positive_rate", "binary_classification", "lower"),
        ("train:logloss", "model_card_metrics", "lower"),
        ("DPPL", "clarify_bias", "zero"),
        ("CDDL", "clarify_bias", "zero"),
        ("AD", "clarify_bias", "zero"),
        ("DI", "clarify_bias", "one"),
        ("Disparate Impact (DI)", "clarify_bias", "one"),
        ("DI", "model_card_metrics", "one"),
        ("shap:age", "clarify_explainability", None),
        ("confusion_matrix", "binary_classification", None),
        ("mse - standard_deviation", "model_card_metrics", None),
        ("made_up_metric", "regression", None),
        ("auc", "clarify_bias", None),
        ("", "regression", None),
    ],
)
def test_metric_direction(name: str, kind: str, direction: str | None) -> None:
    assert metric_direction(name, kind) == direction


@pytest.mark.parametrize(
    ("name", "kind", "candidate", "baseline", "expected"),
    [
        ("auc", "binary_classification", 0.9, 0.8, True),
        ("auc", "binary_classification", 0.7, 0.8, False),
        ("mse", "regression", 3.0, 4.0, True),
        ("mse", "regression", 5.0, 4.0, False),
        ("DPPL", "clarify_bias", -0.05, 0.1, True),
        ("DPPL", "clarify_bias", 0.2, -0.1, False),
        ("DPPL", "clarify_bias", -0.1, 0.1, None),  # equally far from 0
        ("DI", "clarify_bias", 0.95, 0.8, True),
        ("DI", "clarify_bias", 1.3, 1.1, False),
        ("DI", "clarify_bias", 0.9, 1.1, None),  # equally far from 1
        ("auc", "binary_classification", 0.8, 0.8, None),
        ("made_up_metric", "regression", 1.0, 2.0, None),
        ("auc", "binary_classification", float("nan"), 0.8, None),
        ("auc", "binary_classification", 0.9, float("inf"), None),
    ],
)
def test_better(name: str, kind: str, candidate: float, baseline: float, expected: bool | None) -> None:
    assert better(name, kind, candidate, baseline) is expected
