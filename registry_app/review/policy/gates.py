"""Metric gates: ``auc >= 0.85``, ``abs(DPPL) <= 0.1``, ``DI[Gender=0] >= 0.8`` (pure)."""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

from registry_app.review.policy.basics import (
    ABS_LHS_RE,
    GATE_OPS,
    METRIC_NAME_RE,
    NUMBER_RE,
    OP_ALIASES,
    OP_SEARCH_RE,
    PolicyError,
    fmt_threshold,
)

# --------------------------------------------------------------------------------------------
# Metric gates
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricGate:
    """A threshold on one normalised evaluation metric, e.g. ``auc >= 0.85`` or ``abs(DPPL) <= 0.1``."""

    metric: str
    op: str
    threshold: float
    facet: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not METRIC_NAME_RE.fullmatch(self.metric):
            raise PolicyError(
                f"invalid metric name {self.metric!r}: use letters, digits, '_', '.' or '-', starting with a letter"
            )
        if self.op not in GATE_OPS:
            raise PolicyError(f"unsupported operator {self.op!r}; use one of {', '.join(GATE_OPS)}")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int | float):
            raise PolicyError(f"threshold for {self.metric} must be a number, got {self.threshold!r}")
        threshold = float(self.threshold)
        if not math.isfinite(threshold):
            raise PolicyError(f"threshold for {self.metric} must be a finite number, got {self.threshold!r}")
        if self.op == "abs<=" and threshold < 0:
            raise PolicyError(f"abs({self.metric}) <= {threshold!r} can never pass: the threshold is negative")
        if not isinstance(self.facet, str):
            raise PolicyError(f"facet for {self.metric} must be text")
        facet = self.facet.strip()
        if any(ch in "[]()" for ch in facet) or any(unicodedata.category(ch)[0] == "C" for ch in facet):
            raise PolicyError(
                f"invalid facet {self.facet!r}: brackets, parentheses and control characters are not allowed"
            )
        object.__setattr__(self, "threshold", threshold)
        object.__setattr__(self, "facet", facet)

    @classmethod
    def parse(cls, text: str) -> MetricGate:
        """Parse ``"auc >= 0.85"``, ``"mse<=4"``, ``"abs(DPPL) <= 0.1"``, ``"DPPL[Gender=0] <= 0.1"``."""
        if not isinstance(text, str):
            raise PolicyError(f"a metric gate must be text like 'auc >= 0.85', got {type(text).__name__}")
        source = text.strip()
        if not source:
            raise PolicyError("empty metric gate; expected something like 'auc >= 0.85'")
        # Hide facet contents (which may contain '=' or '<') from the operator search.
        masked = re.sub(r"\[[^\]]*\]", lambda m: "[" + "#" * (len(m.group()) - 2) + "]", source)
        op_match = OP_SEARCH_RE.search(masked)
        if op_match is None:
            raise PolicyError(
                f"no comparison operator in gate {text!r}; expected '<metric> <op> <number>' "
                f"with op one of {', '.join(GATE_OPS)}, e.g. 'auc >= 0.85'"
            )
        op = OP_ALIASES.get(op_match.group(), op_match.group())
        if op not in GATE_OPS:
            raise PolicyError(f"unsupported operator {op!r} in gate {text!r}; use one of >=, >, <=, <, ==")
        lhs = source[: op_match.start()].strip()
        rhs = source[op_match.end() :].strip()
        if OP_SEARCH_RE.search(re.sub(r"\[[^\]]*\]", "[]", rhs)):
            raise PolicyError(f"gate {text!r} has more than one comparison operator")
        if not rhs:
            raise PolicyError(f"gate {text!r} has no threshold after {op!r}")
        if not NUMBER_RE.fullmatch(rhs):
            raise PolicyError(f"threshold {rhs!r} in gate {text!r} is not a number")
        threshold = float(rhs)
        if not math.isfinite(threshold):
            raise PolicyError(f"threshold {rhs!r} in gate {text!r} is not a finite number")

        abs_match = ABS_LHS_RE.fullmatch(lhs)
        if abs_match is not None:
            if op not in ("<=", "abs<="):
                raise PolicyError(f"abs(...) gates only support '<=' (as in 'abs(DPPL) <= 0.1'), got {op!r}")
            op = "abs<="
            lhs = abs_match.group("body")
        if not lhs:
            raise PolicyError(f"gate {text!r} has no metric name before {op_match.group()!r}")
        name_match = re.fullmatch(r"(?P<name>[^\[\]\s]+)\s*(?:\[(?P<facet>[^\[\]]*)\])?", lhs)
        if name_match is None:
            raise PolicyError(
                f"cannot read metric {lhs!r} in gate {text!r}; expected a name with an optional facet, "
                "e.g. 'DPPL[Gender=0]'"
            )
        name = name_match.group("name")
        facet_text = name_match.group("facet")
        if facet_text is not None and not facet_text.strip():
            raise PolicyError(f"empty facet brackets in gate {text!r}; write e.g. 'DPPL[Gender=0]' or drop the []")
        return cls(metric=name, op=op, threshold=threshold, facet=(facet_text or "").strip())

    @property
    def subject(self) -> str:
        """``auc`` or ``DPPL[Gender=0]``."""
        return f"{self.metric}[{self.facet}]" if self.facet else self.metric

    def __str__(self) -> str:
        if self.op == "abs<=":
            return f"abs({self.subject}) <= {fmt_threshold(self.threshold)}"
        return f"{self.subject} {self.op} {fmt_threshold(self.threshold)}"

    def holds(self, value: float) -> bool:
        """Whether an observed value satisfies the gate (``==`` tolerates float rounding)."""
        t = self.threshold
        if self.op == ">=":
            return value >= t
        if self.op == ">":
            return value > t
        if self.op == "<=":
            return value <= t
        if self.op == "<":
            return value < t
        if self.op == "==":
            return math.isclose(value, t, rel_tol=1e-9, abs_tol=1e-12)
        return abs(value) <= t  # abs<=

    def badness(self, value: float) -> float:
        """Larger means further from passing; used to pick the worst of several observations."""
        t = self.threshold
        if self.op in (">=", ">"):
            return t - value
        if self.op in ("<=", "<"):
            return value - t
        if self.op == "==":
            return abs(value - t)
        return abs(value) - t
