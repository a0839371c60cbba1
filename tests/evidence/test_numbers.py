"""Plain decimals (never scientific notation) and deltas read by the metric's direction."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry_app.evidence.numbers import delta_view, plain, signed


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.912, "0.912"),
        (0.0002, "0.0002"),
        (0.00001234, "0.00001234"),
        (-0.000123456, "-0.0001235"),
        (4.632785, "4.6328"),
        (2.0, "2"),
        (1234567.5, "1,234,567.5"),
        (1e20, "100,000,000,000,000,000,000"),
        (1e-15, "0"),
        (float("inf"), "—"),
        (True, "—"),
        ("n/a", "n/a"),
    ],
)
def test_plain_never_uses_scientific_notation(value: object, shown: str) -> None:
    assert plain(value) == shown
    assert "e" not in plain(value).replace("n/a", "")


def test_signed_shows_the_direction_of_a_change() -> None:
    assert signed(0.0002) == "+0.0002"
    assert signed(-0.015) == "-0.015"
    assert signed(0) == "0"
    assert signed(None) == "—"


@pytest.mark.parametrize(
    ("name", "kind", "value", "baseline", "arrow", "meaning", "text"),
    [
        ("auc", "binary_classification", 0.9122, 0.912, "↑", "better", "+0.0002"),
        ("accuracy", "binary_classification", 0.80, 0.85, "↓", "worse", "-0.05"),
        ("rmse", "regression", 3.1, 3.4, "↓", "better", "-0.3"),
        ("validation:logloss", "", 0.31, 0.30, "↑", "worse", "+0.01"),
        ("DPPL", "clarify_bias", -0.02, 0.10, "↓", "better", "-0.12"),  # closer to 0 by absolute value
        ("DPPL", "clarify_bias", 0.1, -0.1, "↑", "same", "+0.2"),  # equally far from 0
        ("DI", "clarify_bias", 0.95, 0.7, "↑", "better", "+0.25"),  # closer to 1
        ("DI", "clarify_bias", 1.5, 1.1, "↑", "worse", "+0.4"),
        ("calibration_slope", "binary_classification", 1.1, 1.0, "↑", "changed", "+0.1"),
        ("auc", "binary_classification", 0.9, 0.9, "=", "same", "0"),
    ],
)
def test_delta_view(name: str, kind: str, value: float, baseline: float, arrow: str, meaning: str, text: str) -> None:
    view = delta_view(name, kind, value, baseline)
    assert (view.arrow, view.meaning, view.text) == (arrow, meaning, text)
    assert view.css == f"delta delta-{meaning}"
    assert view.spoken  # screen readers get a sentence, not only a colour


def test_delta_words_for_screen_readers() -> None:
    view = delta_view("auc", "binary_classification", 0.93, 0.9)
    assert view.word == "better"
    assert view.spoken == "increased by 0.03, better (higher is better)"
    assert delta_view("auc", "", None, 0.9).meaning == "none"


@settings(max_examples=500, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(allow_nan=True, allow_infinity=True))
def test_any_number_and_delta_render_without_exponent(value: float, baseline: float) -> None:
    assert "e" not in plain(value).lower()
    view = delta_view("auc", "binary_classification", value, baseline)
    assert "e" not in view.text.lower()
    if view.meaning not in ("none", "same"):
        assert view.arrow in ("↑", "↓") and view.spoken
