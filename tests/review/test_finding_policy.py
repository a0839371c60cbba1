"""``finding_blocking_severities`` in a PolicySpec (pure: no database), and the conditions text."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from registry_app.review.finding_list import conditions_text
from registry_app.review.policy import PolicyError, PolicySpec


def test_the_default_blocks_high_and_critical_and_is_left_out_of_the_dict() -> None:
    policy = PolicySpec.from_dict({"name": "p"})
    assert policy.finding_blocking_severities == ("high", "critical")
    assert "finding_blocking_severities" not in policy.to_dict()  # the stored policies' digests stay put


def test_round_trip_in_severity_order() -> None:
    policy = PolicySpec.from_dict({"name": "p", "finding_blocking_severities": ["critical", "medium", "critical"]})
    assert policy.finding_blocking_severities == ("medium", "critical")
    assert policy.to_dict()["finding_blocking_severities"] == ["medium", "critical"]
    assert PolicySpec.from_dict(policy.to_dict()) == policy


def test_an_empty_list_blocks_nothing() -> None:
    assert PolicySpec.from_dict({"name": "p", "finding_blocking_severities": []}).finding_blocking_severities == ()


@pytest.mark.parametrize("value", ["high", ["severe"], [1], {"high": True}, None])
def test_bad_values_are_refused(value: object) -> None:
    with pytest.raises(PolicyError, match="finding_blocking_severities|finding severity"):
        PolicySpec.from_dict({"name": "p", "finding_blocking_severities": value})


def _finding(pk: int, title: str, due: dt.date | None = None) -> SimpleNamespace:
    return SimpleNamespace(pk=pk, ref=f"F-{pk}", title=title, due_date=due)


URL = "https://gov.example.com/packages/credit-risk/3/"


def test_conditions_text_in_full() -> None:
    text = conditions_text(
        [_finding(12, "monitor DPPL monthly", dt.date(2027, 3, 1)), _finding(13, "retrain")], URL, 1024
    )
    assert text == f"Conditions: F-12 monitor DPPL monthly (due 2027-03-01); F-13 retrain. See {URL}"


@pytest.mark.parametrize("limit", [1024, 400, 200, 120, 60, 30, 16])
def test_conditions_text_is_shortened_to_fit(limit: int) -> None:
    findings = [_finding(i, "monitor the population stability index " * 5, dt.date(2027, 1, 1)) for i in range(10)]
    text = conditions_text(findings, URL, limit)
    assert len(text) <= limit
    assert text.startswith("Conditions:")


def test_no_conditions_no_text() -> None:
    assert conditions_text([], URL, 1024) == ""
    assert conditions_text([_finding(1, "x")], URL, 5) == ""
