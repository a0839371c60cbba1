"""Issue 15: the revalidation keys of a policy (``revalidate_every_days``, ``revalidation_grace_days``)."""

from __future__ import annotations

from typing import Any

import pytest

from registry_app.review.policy import PolicyError, PolicySpec


def test_defaults_never_revalidate_with_thirty_days_grace() -> None:
    policy = PolicySpec.from_dict({"name": "plain"})
    assert policy.revalidate_every_days is None
    assert policy.revalidation_grace_days == 30
    assert "revalidate_every_days" not in policy.to_dict()  # unchanged JSON for policies without it


def test_round_trip_with_revalidation() -> None:
    policy = PolicySpec.from_dict({"name": "high", "revalidate_every_days": 365, "revalidation_grace_days": 14})
    assert (policy.revalidate_every_days, policy.revalidation_grace_days) == (365, 14)
    dumped = policy.to_dict()
    assert dumped["revalidate_every_days"] == 365 and dumped["revalidation_grace_days"] == 14
    assert PolicySpec.from_dict(dumped) == policy


def test_explicit_null_means_never() -> None:
    assert PolicySpec.from_dict({"name": "p", "revalidate_every_days": None}).revalidate_every_days is None


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"revalidate_every_days": 0}, "between 1 and 3660"),
        ({"revalidate_every_days": 3661}, "between 1 and 3660"),
        ({"revalidate_every_days": "365"}, "whole number of days or null"),
        ({"revalidate_every_days": 36.5}, "whole number of days or null"),
        ({"revalidate_every_days": True}, "whole number of days or null"),
        ({"revalidation_grace_days": -1}, "between 0 and 365"),
        ({"revalidation_grace_days": 366}, "between 0 and 365"),
        ({"revalidation_grace_days": None}, "revalidation_grace_days must be a whole number"),
        ({"revalidation_grace_days": False}, "revalidation_grace_days must be a whole number"),
    ],
)
def test_invalid_values_are_refused_with_a_clear_message(data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(PolicyError, match=fragment) as exc:
        PolicySpec.from_dict({"name": "p", **data})
    assert "policy 'p'" in str(exc.value)


def test_zero_grace_is_allowed() -> None:
    assert PolicySpec(name="p", revalidate_every_days=1, revalidation_grace_days=0).revalidation_grace_days == 0


def test_unknown_key_message_lists_the_new_keys() -> None:
    with pytest.raises(PolicyError, match="revalidate_every_days"):
        PolicySpec.from_dict({"name": "p", "revalidate_every": 3})
