"""Numbers for people: plain decimals with a sensible number of significant digits, and deltas that say
which way they went and whether that is better. Never scientific notation. Pure.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from registry_app.mirror.reports.directions import better, metric_direction

EMPTY = "—"
MINUS = "-"
MAX_DECIMALS = 12

DIRECTION_WORDS = {
    "higher": "higher is better",
    "lower": "lower is better",
    "zero": "closer to 0 is better",
    "one": "closer to 1 is better",
}


def value_text(value: Any) -> str:
    """A registry value as comparable text: "" for None, a string as it is, anything else as sorted JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def as_float(value: Any) -> float | None:
    """A finite float, or None for None, booleans, text that is not a number, NaN and infinities."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _decimals(number: float, digits: int) -> int:
    """``digits`` decimals, or as many as ``digits`` significant digits need for a small number."""
    if number == 0 or abs(number) >= 10 ** -(digits - 1):
        return digits
    magnitude = math.floor(math.log10(abs(number)))
    return max(0, min(MAX_DECIMALS, digits - 1 - magnitude))


def plain(value: Any, digits: int = 4) -> str:
    """``0.91200`` -> ``0.912``, ``4.632785`` -> ``4.6328``, ``0.00001234`` -> ``0.00001234``, ``12345`` -> ``12,345``.

    Fixed-point with thousands separators, never scientific notation: ``digits`` decimals (trailing zeros
    dropped), more for a small number so that it keeps ``digits`` significant digits. Integers keep every
    digit. ``None``, booleans, NaN and infinities render as a dash; text that is no number as itself.
    """
    number = as_float(value)
    if number is None:
        return EMPTY if value is None or isinstance(value, bool) or _is_number_like(value) else str(value)
    if number.is_integer() and abs(number) < 1e15:
        return _signed(f"{int(abs(number)):,}", number)
    text = f"{abs(number):,.{_decimals(number, digits)}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text.strip("0.,") == "":  # smaller than the last decimal we keep
        return "0"
    return _signed(text, number)


def _is_number_like(value: Any) -> bool:
    return isinstance(value, int | float)


def _signed(text: str, number: float) -> str:
    return f"{MINUS}{text}" if number < 0 else text


def signed(value: Any, digits: int = 4) -> str:
    """A change with its sign: ``+0.0002``, ``−0.015``, ``0``."""
    number = as_float(value)
    if number is None:
        return EMPTY
    text = plain(number, digits)
    if number > 0 and text != "0":
        return f"+{text}"
    return text


@dataclass(frozen=True)
class DeltaView:
    """How a change reads: ``↑ +0.0002 better`` with a class for colour and a sentence for screen readers."""

    text: str  # "+0.0002"
    arrow: str  # "↑", "↓", "="
    meaning: str  # "better", "worse", "same", "changed" (no known direction), "none" (nothing to compare)
    word: str  # what is shown after the number: "better", "worse", "unchanged", "" ...
    spoken: str  # for screen readers: "increased by 0.0002, better (higher is better)"

    @property
    def css(self) -> str:
        return f"delta delta-{self.meaning}"


NO_DELTA = DeltaView(EMPTY, "", "none", "", "no value to compare with")


def delta_view(name: str, kind: str, value: Any, baseline: Any) -> DeltaView:
    """The change from ``baseline`` to ``value`` of metric ``name`` (of report ``kind``), read by its direction."""
    new, old = as_float(value), as_float(baseline)
    if new is None or old is None:
        return NO_DELTA
    change = new - old
    if not math.isfinite(change):  # two values near the float limits
        return NO_DELTA
    text = signed(change)
    direction = metric_direction(name, kind)
    rule = DIRECTION_WORDS.get(direction or "", "")
    if text in ("0", "+0", f"{MINUS}0") or change == 0:
        return DeltaView("0", "=", "same", "unchanged", "unchanged")
    arrow = "↑" if change > 0 else "↓"
    moved = f"{'increased' if change > 0 else 'decreased'} by {plain(abs(change))}"
    verdict = better(name, kind, new, old)
    if verdict is True:
        return DeltaView(text, arrow, "better", "better", f"{moved}, better ({rule})")
    if verdict is False:
        return DeltaView(text, arrow, "worse", "worse", f"{moved}, worse ({rule})")
    if direction is not None:  # equally good by the direction (e.g. -0.1 and +0.1 for an ideal of 0)
        return DeltaView(text, arrow, "same", "as good", f"{moved}, equally good ({rule})")
    return DeltaView(text, arrow, "changed", "", f"{moved}; this metric has no better or worse direction")
