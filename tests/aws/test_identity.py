"""Folding usernames into what STS accepts: always valid, deterministic, recognisable, distinct."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from registry_app.aws.identity import fold_identity, is_valid_identity

STS_PATTERN = re.compile(r"[\w+=,.@-]*", re.ASCII)  # botocore: roleSessionNameType / sourceIdentityType


@given(st.text(max_size=200))
def test_every_name_folds_to_what_sts_accepts(name: str) -> None:
    folded = fold_identity(name)
    assert 2 <= len(folded) <= 64 and STS_PATTERN.fullmatch(folded)
    assert fold_identity(name) == folded  # deterministic
    assert fold_identity(folded) == folded  # a valid name is left alone


@given(st.text(min_size=1, max_size=80), st.text(min_size=1, max_size=80))
def test_different_names_that_need_folding_stay_different(a: str, b: str) -> None:
    if a != b and not is_valid_identity(a) and not is_valid_identity(b):
        assert fold_identity(a) != fold_identity(b)


def test_names_stay_recognisable() -> None:
    assert fold_identity("alice") == "alice"
    assert fold_identity("ops@example.com") == "ops@example.com"
    assert fold_identity("josé.müller").startswith("jose.muller-")
    assert fold_identity("Zoë Saldaña").startswith("Zoe-Saldana-")
    assert fold_identity("ﬁnance").startswith("finance-")  # the ligature splits
    assert fold_identity("josé.müller") != fold_identity("jose.muller")
    assert len(fold_identity("李小龙")) == 8  # nothing left but the hash
    assert fold_identity("") == "governance-dashboard"
    long = fold_identity("a" * 100)
    assert len(long) == 64 and long.startswith("a" * 55 + "-")
