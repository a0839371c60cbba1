"""Which way is better for a metric (higher, lower, closest to 0, closest to 1), and whether one value beats
another by it. The review panel compares a version with its baseline this way. Pure.
"""

from __future__ import annotations

import math
import re

from registry_app.mirror.reports.values import KIND_BIAS, KIND_EXPLAINABILITY, KIND_MODEL_CARD, KIND_UNKNOWN, as_number

HIGHER_IS_BETTER = frozenset(
    {
        "auc",
        "roc_auc",
        "auc_roc",
        "aucpr",
        "pr_auc",
        "auprc",
        "average_precision",
        "accuracy",
        "balanced_accuracy",
        "top_k_accuracy",
        "f1",
        "f1_score",
        "f0_5",
        "f2",
        "fbeta",
        "precision",
        "recall",
        "sensitivity",
        "specificity",
        "true_positive_rate",
        "true_negative_rate",
        "tpr",
        "tnr",
        "r2",
        "r_squared",
        "adjusted_r2",
        "explained_variance",
        "mcc",
        "matthews_corrcoef",
        "kappa",
        "cohen_kappa",
        "map",
        "ndcg",
        "bleu",
        "rouge",
        "iou",
        "dice",
    }
)
LOWER_IS_BETTER = frozenset(
    {
        "mse",
        "rmse",
        "mae",
        "mape",
        "msle",
        "rmsle",
        "mean_squared_error",
        "root_mean_squared_error",
        "mean_absolute_error",
        "mean_absolute_percentage_error",
        "median_absolute_error",
        "max_error",
        "logloss",
        "log_loss",
        "mlogloss",
        "loss",
        "cross_entropy",
        "error",
        "merror",
        "error_rate",
        "misclassification_rate",
        "false_positive_rate",
        "false_negative_rate",
        "fpr",
        "fnr",
        "brier_score",
        "hinge_loss",
        "perplexity",
        "wer",
        "cer",
    }
)
# Clarify bias metrics (pre- and post-training). Every one is ideal at 0 except disparate impact, ideal at 1.
BIAS_IDEAL_ZERO = frozenset(
    {
        "CI",
        "DPL",
        "KL",
        "JS",
        "LP",
        "TVD",
        "KS",
        "CDDL",
        "DPPL",
        "DCA",
        "DCACC",
        "DCR",
        "RD",
        "SD",
        "DAR",
        "DRR",
        "AD",
        "TE",
        "FT",
        "CDDPL",
        "GE",
    }
)
BIAS_IDEAL_ONE = frozenset({"DI"})
_BIAS_ABBREVIATION = re.compile(r"\(([A-Za-z]{2,6})\)\s*$")
_GENERIC_KINDS = frozenset({KIND_MODEL_CARD, KIND_UNKNOWN, ""})


def _bias_direction(name: str) -> str | None:
    text = name.strip()
    match = _BIAS_ABBREVIATION.search(text)  # "Disparate Impact (DI)" -> "DI"
    short = (match.group(1) if match else text).upper()
    if short in BIAS_IDEAL_ONE:
        return "one"
    if short in BIAS_IDEAL_ZERO:
        return "zero"
    return None


def _normalise_metric_name(name: str) -> str:
    text = name.strip().lower().rsplit(":", 1)[-1]  # "validation:auc" -> "auc"
    text = re.sub(r"[\s\-]+", "_", text).strip("_")
    text = text.removesuffix("_best_constant_classifier")
    for prefix in ("weighted_", "macro_", "micro_"):
        text = text.removeprefix(prefix)
    return text


def metric_direction(name: str, kind: str) -> str | None:
    """Which way is better: "higher", "lower", "zero" (closest to 0), "one" (closest to 1) or None if unknown."""
    if not isinstance(name, str) or not name.strip():
        return None
    if kind == KIND_BIAS:
        return _bias_direction(name)
    if kind == KIND_EXPLAINABILITY:
        return None  # SHAP values describe the model; neither direction is "better".
    if kind in _GENERIC_KINDS and name.strip().isupper():
        bias = _bias_direction(name)
        if bias is not None:
            return bias
    normalised = _normalise_metric_name(name)
    if normalised in HIGHER_IS_BETTER:
        return "higher"
    if normalised in LOWER_IS_BETTER:
        return "lower"
    return None


def better(name: str, kind: str, candidate: float, baseline: float) -> bool | None:
    """Is ``candidate`` better than ``baseline``? None when the direction is unknown, a value is not finite,
    or the two are equally good (compared with a 1e-12 tolerance)."""
    direction = metric_direction(name, kind)
    if direction is None:
        return None
    c_ok, c = as_number(candidate)
    b_ok, b = as_number(baseline)
    if not (c_ok and b_ok) or c is None or b is None:
        return None
    scores = {
        "higher": (c, b),
        "lower": (-c, -b),
        "zero": (-abs(c), -abs(b)),
        "one": (-abs(c - 1.0), -abs(b - 1.0)),
    }
    candidate_score, baseline_score = scores[direction]
    if math.isclose(candidate_score, baseline_score, rel_tol=1e-12, abs_tol=1e-12):
        return None
    return candidate_score > baseline_score
