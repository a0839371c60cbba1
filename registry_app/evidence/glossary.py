"""What the metric abbreviations mean and which values are fair: SageMaker Clarify's pre- and post-training
bias metrics and the common quality metrics. A plain table; ``registry_tags.metric_name`` renders it as
``<abbr title="…">``. Pure.

Sources: the SageMaker Clarify developer guide ("Pre-training bias metrics", "Post-training data and model
bias metrics"). Ranges are those the guide gives; "fair" is where the metric shows no bias.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    short: str
    name: str
    stage: str  # "pre-training", "post-training" or "quality"
    fair: str  # what value or range means "no bias" (or, for quality metrics, which way is better)

    @property
    def title(self) -> str:
        return f"{self.name}. {self.fair}" if self.fair else self.name


_ZERO = "Fair at 0; range −1 to 1, further from 0 means more bias against one facet"
_ZERO_POS = "Fair at 0; range 0 to +∞ (0 to 1 for some), larger means the distributions differ more"

_TERMS = (
    # Pre-training bias (the data)
    Term("CI", "Class imbalance", "pre-training", _ZERO),
    Term("DPL", "Difference in proportions of labels", "pre-training", _ZERO),
    Term("KL", "Kullback–Leibler divergence", "pre-training", _ZERO_POS),
    Term("JS", "Jensen–Shannon divergence", "pre-training", "Fair at 0; range 0 to ln 2, larger means more bias"),
    Term("LP", "Lp-norm of the label distributions' difference", "pre-training", _ZERO_POS),
    Term("TVD", "Total variation distance", "pre-training", "Fair at 0; range 0 to 1, larger means more bias"),
    Term("KS", "Kolmogorov–Smirnov distance", "pre-training", "Fair at 0; range 0 to 1, larger means more bias"),
    Term("CDDL", "Conditional demographic disparity in labels", "pre-training", _ZERO),
    # Post-training bias (the model's predictions)
    Term("DPPL", "Difference in positive proportions in predicted labels", "post-training", _ZERO),
    Term(
        "DI",
        "Disparate impact",
        "post-training",
        "Fair at 1; 0.8 to 1.25 is commonly accepted (the four-fifths rule), range 0 to +∞",
    ),
    Term("AD", "Accuracy difference", "post-training", _ZERO),
    Term("RD", "Recall difference", "post-training", _ZERO),
    Term("DCA", "Difference in conditional acceptance", "post-training", "Fair at 0; range −∞ to +∞"),
    Term("DCACC", "Difference in conditional acceptance", "post-training", "Fair at 0; range −∞ to +∞"),
    Term("DCR", "Difference in conditional rejection", "post-training", "Fair at 0; range −∞ to +∞"),
    Term("DAR", "Difference in acceptance rates", "post-training", _ZERO),
    Term("DRR", "Difference in rejection rates", "post-training", _ZERO),
    Term("PD", "Precision difference", "post-training", _ZERO),
    Term("SD", "Specificity difference", "post-training", _ZERO),
    Term("TE", "Treatment equality", "post-training", "Fair at 0; range −∞ to +∞"),
    Term("CDDPL", "Conditional demographic disparity in predicted labels", "post-training", _ZERO),
    Term("FT", "Counterfactual flip test", "post-training", _ZERO),
    Term("GE", "Generalized entropy", "post-training", "Fair at 0; range 0 to 0.5, larger means less equal outcomes"),
    # Model quality
    Term("AUC", "Area under the ROC curve", "quality", "Higher is better; 0.5 is chance, 1 is perfect"),
    Term("PR_AUC", "Area under the precision–recall curve", "quality", "Higher is better"),
    Term("F1", "F1 score (harmonic mean of precision and recall)", "quality", "Higher is better; range 0 to 1"),
    Term("MSE", "Mean squared error", "quality", "Lower is better; 0 is perfect"),
    Term("RMSE", "Root mean squared error", "quality", "Lower is better; 0 is perfect"),
    Term("MAE", "Mean absolute error", "quality", "Lower is better; 0 is perfect"),
    Term("R2", "Coefficient of determination (R²)", "quality", "Higher is better; 1 is perfect"),
    Term("MCC", "Matthews correlation coefficient", "quality", "Higher is better; range −1 to 1"),
    Term("LOG_LOSS", "Logarithmic loss (cross-entropy)", "quality", "Lower is better; 0 is perfect"),
)
GLOSSARY: dict[str, Term] = {term.short: term for term in _TERMS}
_IN_PARENS = re.compile(r"\(([A-Za-z0-9_]{2,8})\)\s*$")


def lookup(name: str) -> Term | None:
    """The term for ``DPPL``, ``dppl``, ``Disparate Impact (DI)``, ``validation:auc``; None when unknown."""
    if not isinstance(name, str) or not name.strip():
        return None
    text = name.strip()
    match = _IN_PARENS.search(text)
    key = (match.group(1) if match else text.rsplit(":", 1)[-1]).strip().upper().replace("-", "_").replace(" ", "_")
    return GLOSSARY.get(key) or GLOSSARY.get(key.removeprefix("ROC_"))
