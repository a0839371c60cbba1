"""Metric abbreviations with their full names and fair ranges, rendered as <abbr title>."""

from __future__ import annotations

import pytest
from django.template import Context, Template

from registry_app.evidence.glossary import GLOSSARY, lookup

PRE_TRAINING = ("CI", "DPL", "KL", "JS", "LP", "TVD", "KS", "CDDL")
POST_TRAINING = ("DPPL", "DI", "AD", "RD", "DCACC", "DCR", "DAR", "DRR", "PD", "SD", "TE", "CDDPL", "FT", "GE")
CLARIFY = PRE_TRAINING + POST_TRAINING


@pytest.mark.parametrize("short", CLARIFY)
def test_every_clarify_metric_is_explained(short: str) -> None:
    term = GLOSSARY[short]
    assert term.name and term.fair
    assert term.stage in ("pre-training", "post-training")


@pytest.mark.parametrize(
    ("name", "short"),
    [("DPPL", "DPPL"), ("dppl", "DPPL"), ("Disparate Impact (DI)", "DI"), ("validation:auc", "AUC"), ("f1", "F1")],
)
def test_lookup_reads_the_forms_reports_use(name: str, short: str) -> None:
    term = lookup(name)
    assert term is not None and term.short == short


def test_unknown_names_are_not_guessed() -> None:
    assert lookup("calibration_slope") is None
    assert lookup("") is None


def test_disparate_impact_says_what_is_fair() -> None:
    assert "Fair at 1" in GLOSSARY["DI"].fair and "0.8 to 1.25" in GLOSSARY["DI"].fair


def test_metric_name_renders_abbr_and_escapes() -> None:
    render = Template("{% load evidence_tags %}{% metric_name name %}").render
    assert render(Context({"name": "DPPL"})) == (
        '<abbr class="mono" title="Difference in positive proportions in predicted labels. '
        'Fair at 0; range −1 to 1, further from 0 means more bias against one facet">DPPL</abbr>'
    )
    hostile = render(Context({"name": "<script>x</script>"}))
    assert "<script>" not in hostile and "&lt;script&gt;" in hostile
