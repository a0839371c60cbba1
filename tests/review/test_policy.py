"""Approval policy: gates, policy validation and selection, evaluation, separation of duties.

The policy module is pure, so none of these tests touch the database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from registry_app.review.policy import (
    DEFAULT_POLICY,
    MetricGate,
    MetricObservation,
    PolicyError,
    PolicyOverride,
    PolicySpec,
    SignOffNotAllowed,
    SignOffView,
    approval_description,
    check_can_sign,
    evaluate,
    role_flags_for,
    select_policy,
    sla_state,
)

FP = "sha256:current"
OLD_FP = "sha256:old"
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

USERS = {"alice": 1, "bob": 2, "carol": 3, "dave": 4, "erin": 5}


def so(
    username: str,
    role: str,
    decision: str = "approve",
    *,
    fp: str = FP,
    at: datetime | None = None,
    comment: str = "",
) -> SignOffView:
    return SignOffView(
        user_id=USERS[username],
        username=username,
        role=role,
        decision=decision,
        fingerprint=fp,
        signed_at=at or T0,
        comment=comment,
    )


def full_signoffs() -> list[SignOffView]:
    return [
        so("alice", "ml-lead", at=T0),
        so("bob", "fairness", at=T0 + timedelta(hours=1)),
        so("carol", "compliance", at=T0 + timedelta(days=1)),
    ]


GATED = PolicySpec(
    name="gated",
    gates=(MetricGate.parse("auc >= 0.85"), MetricGate.parse("abs(DPPL) <= 0.1")),
)
GOOD_METRICS = [
    MetricObservation("AUC", 0.91, kind="model_quality"),
    MetricObservation("DPPL", -0.05, facet="Gender=0", kind="bias"),
]


# --------------------------------------------------------------------------- gate parsing


@pytest.mark.parametrize(
    ("text", "metric", "op", "threshold", "facet"),
    [
        ("auc >= 0.85", "auc", ">=", 0.85, ""),
        ("mse<=4", "mse", "<=", 4.0, ""),
        ("  rmse < 2.5 ", "rmse", "<", 2.5, ""),
        ("recall > .7", "recall", ">", 0.7, ""),
        ("f1-score == 1", "f1-score", "==", 1.0, ""),
        ("abs(DPPL) <= 0.1", "DPPL", "abs<=", 0.1, ""),
        ("DPPL abs<= 0.1", "DPPL", "abs<=", 0.1, ""),
        ("DPPL[Gender=0] <= 0.1", "DPPL", "<=", 0.1, "Gender=0"),
        ("abs(DPPL[Gender=0]) <= 0.1", "DPPL", "abs<=", 0.1, "Gender=0"),
        ("auc ≥ 0.85", "auc", ">=", 0.85, ""),
        ("loss <= 1e-3", "loss", "<=", 0.001, ""),
        ("bias >= -0.2", "bias", ">=", -0.2, ""),
        ("mae_abs<=1", "mae_abs", "<=", 1.0, ""),
    ],
)
def test_gate_parse_valid(text: str, metric: str, op: str, threshold: float, facet: str) -> None:
    gate = MetricGate.parse(text)
    assert (gate.metric, gate.op, gate.threshold, gate.facet) == (metric, op, threshold, facet)
    assert MetricGate.parse(str(gate)) == gate


def test_gate_str_forms() -> None:
    assert str(MetricGate.parse("mse<=4")) == "mse <= 4.0"
    assert str(MetricGate.parse("abs(DPPL) <= 0.1")) == "abs(DPPL) <= 0.1"
    assert str(MetricGate.parse("DPPL[Gender=0]<=0.1")) == "DPPL[Gender=0] <= 0.1"
    assert str(MetricGate("auc", ">=", 0.85)) == "auc >= 0.85"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty metric gate"),
        ("   ", "empty metric gate"),
        ("auc", "no comparison operator"),
        ("auc 0.85", "no comparison operator"),
        ("auc = 0.85", "unsupported operator '='"),
        ("auc != 0.85", "unsupported operator '!='"),
        ("auc >= high", "'high' in gate 'auc >= high' is not a number"),
        ("auc >=", "no threshold"),
        (">= 0.85", "no metric name"),
        ("auc >= nan", "not a number"),
        ("auc >= inf", "not a number"),
        ("auc >= 0.5 <= 0.9", "more than one comparison operator"),
        ("abs(DPPL) >= 0.1", "abs(...) gates only support '<='"),
        ("DPPL[] <= 0.1", "empty facet brackets"),
        ("a b >= 1", "cannot read metric 'a b'"),
        ("1auc >= 1", "invalid metric name '1auc'"),
        ("abs(DPPL) <= -0.1", "can never pass"),
    ],
)
def test_gate_parse_invalid(text: str, fragment: str) -> None:
    with pytest.raises(PolicyError) as exc:
        MetricGate.parse(text)
    assert fragment in str(exc.value)


def test_gate_constructor_validates() -> None:
    with pytest.raises(PolicyError, match="unsupported operator"):
        MetricGate("auc", "=>", 0.5)
    with pytest.raises(PolicyError, match="must be a number"):
        MetricGate("auc", ">=", "0.5")  # type: ignore[arg-type]
    with pytest.raises(PolicyError, match="finite"):
        MetricGate("auc", ">=", float("nan"))
    assert MetricGate("auc", ">=", 1).threshold == 1.0
    assert isinstance(MetricGate("auc", ">=", 1).threshold, float)


# --------------------------------------------------------------------------- PolicySpec


def test_default_policy() -> None:
    assert DEFAULT_POLICY.required_roles == {"ml-lead": 1, "fairness": 1, "compliance": 1}
    assert DEFAULT_POLICY.role_flags == {
        "ml-lead": "MLEngineerApproved",
        "fairness": "FairnessApproved",
        "compliance": "ComplianceApproved",
    }
    assert DEFAULT_POLICY.sla_hours == 72
    assert DEFAULT_POLICY.require_card_approved is False
    assert DEFAULT_POLICY.gates == ()


def test_from_dict_full_and_round_trip() -> None:
    data: dict[str, Any] = {
        "name": "high-risk",
        "required_roles": {"ml-lead": 1, "fairness": 2, "compliance": 1, "data-privacy": 1},
        "require_card_approved": True,
        "gates": ["auc >= 0.85", "abs(DPPL) <= 0.1", "DPPL[Gender=0] <= 0.05"],
        "sla_hours": 24,
        "role_flags": {"compliance": "Compliance:SignedOff"},
    }
    policy = PolicySpec.from_dict(data)
    assert policy.required_roles["fairness"] == 2
    assert policy.gates[1] == MetricGate("DPPL", "abs<=", 0.1)
    assert policy.gates[2].facet == "Gender=0"
    assert policy.role_flags == {
        "ml-lead": "MLEngineerApproved",
        "fairness": "FairnessApproved",
        "compliance": "Compliance:SignedOff",
        "data-privacy": "DataPrivacyApproved",
    }
    dumped = policy.to_dict()
    assert dumped["gates"] == ["auc >= 0.85", "abs(DPPL) <= 0.1", "DPPL[Gender=0] <= 0.05"]
    assert PolicySpec.from_dict(dumped) == policy


def test_from_dict_minimal_takes_defaults() -> None:
    policy = PolicySpec.from_dict({"name": "plain"})
    assert policy.required_roles == DEFAULT_POLICY.required_roles
    assert policy.role_flags == DEFAULT_POLICY.role_flags
    assert policy.sla_hours == 72


def test_role_flags_only_cover_required_roles() -> None:
    policy = PolicySpec(name="lean", required_roles={"ml-lead": 1, "model_risk": 1})
    assert policy.role_flags == {"ml-lead": "MLEngineerApproved", "model_risk": "ModelRiskApproved"}


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ("not a dict", "must be a JSON object"),
        ({}, "needs a 'name'"),
        ({"name": ""}, "non-empty name"),
        ({"name": "p", "roles": {"ml-lead": 1}}, "unknown policy key(s): roles"),
        ({"name": "p", "required_roles": {}}, "at least one role"),
        ({"name": "p", "required_roles": ["ml-lead"]}, "object of role -> count"),
        ({"name": "p", "required_roles": {"ml-lead": 0}}, "at least 1 sign-off"),
        ({"name": "p", "required_roles": {"ml-lead": -2}}, "at least 1 sign-off"),
        ({"name": "p", "required_roles": {"ml-lead": "1"}}, "must be an integer"),
        ({"name": "p", "required_roles": {"ml-lead": True}}, "must be an integer"),
        ({"name": "p", "required_roles": {"ml lead!": 1}}, "invalid role name"),
        ({"name": "p", "gates": "auc >= 0.8"}, "gates must be a list"),
        ({"name": "p", "gates": ["auc >= 0.8", "auc >>> 1"]}, "policy 'p':"),
        ({"name": "p", "gates": [{"metric": "auc"}]}, "each gate must be a string"),
        ({"name": "p", "sla_hours": 0}, "sla_hours must be between"),
        ({"name": "p", "sla_hours": 12.5}, "whole number of hours"),
        ({"name": "p", "require_card_approved": "yes"}, "true or false"),
        ({"name": "p", "role_flags": {"ml-lead": "Bad<Flag>"}}, "not a valid CustomerMetadataProperties key"),
        ({"name": "p", "role_flags": {"ml-lead": ""}}, "not a valid CustomerMetadataProperties key"),
        ({"name": "p", "role_flags": {"ml-lead": "x" * 129}}, "not a valid CustomerMetadataProperties key"),
        ({"name": "p", "role_flags": {"security": "SecOK"}}, "not in required_roles: security"),
        (
            {"name": "p", "role_flags": {"ml-lead": "SameFlag", "fairness": "SameFlag"}},
            "both write flag 'SameFlag'",
        ),
    ],
)
def test_from_dict_rejects_bad_input(data: Any, fragment: str) -> None:
    with pytest.raises(PolicyError) as exc:
        PolicySpec.from_dict(data)
    assert fragment in str(exc.value)


def test_flag_keys_accept_the_sagemaker_character_set() -> None:
    policy = PolicySpec.from_dict(
        {"name": "p", "role_flags": {"ml-lead": "Team A/ML_Lead:ok=+@.-", "fairness": "Fairnéss Geprüft"}}
    )
    assert policy.role_flags["ml-lead"] == "Team A/ML_Lead:ok=+@.-"
    assert policy.role_flags["fairness"] == "Fairnéss Geprüft"


# --------------------------------------------------------------------------- select_policy

STRICT = PolicySpec(name="strict", sla_hours=24)
HIGH = PolicySpec(name="high-risk", require_card_approved=True)
ALPHA = PolicySpec(name="alpha")
BETA = PolicySpec(name="beta")


def test_select_policy_default_when_nothing_matches() -> None:
    overrides = [PolicyOverride(STRICT, group_name="other"), PolicyOverride(HIGH, tag_key="RiskTier", tag_value="high")]
    assert select_policy("churn", {"RiskTier": "low"}, overrides, DEFAULT_POLICY) is DEFAULT_POLICY


def test_select_policy_group_name_beats_tag_even_with_lower_priority() -> None:
    overrides = [
        PolicyOverride(HIGH, tag_key="RiskTier", tag_value="high", priority=100),
        PolicyOverride(STRICT, group_name="Churn-Model"),
    ]
    assert select_policy("churn-model", {"RiskTier": "high"}, overrides, DEFAULT_POLICY) is STRICT


def test_select_policy_tag_match_and_priority() -> None:
    overrides = [
        PolicyOverride(ALPHA, tag_key="RiskTier", tag_value="high", priority=1),
        PolicyOverride(HIGH, tag_key="Domain", tag_value="credit", priority=5),
    ]
    tags = {"RiskTier": "high", "Domain": "credit"}
    assert select_policy("g", tags, overrides, DEFAULT_POLICY) is HIGH
    assert select_policy("g", {"RiskTier": "high"}, overrides, DEFAULT_POLICY) is ALPHA
    # Tag values are compared exactly (AWS tags are case-sensitive).
    assert select_policy("g", {"RiskTier": "HIGH"}, overrides, DEFAULT_POLICY) is DEFAULT_POLICY


def test_select_policy_ties_are_deterministic() -> None:
    a = PolicyOverride(ALPHA, tag_key="RiskTier", tag_value="high")
    b = PolicyOverride(BETA, tag_key="RiskTier", tag_value="high")
    assert select_policy("g", {"RiskTier": "high"}, [a, b], DEFAULT_POLICY) is ALPHA
    assert select_policy("g", {"RiskTier": "high"}, [b, a], DEFAULT_POLICY) is ALPHA


def test_override_must_target_exactly_one_thing() -> None:
    with pytest.raises(PolicyError, match="exactly one of group_name or tag_key"):
        PolicyOverride(STRICT)
    with pytest.raises(PolicyError, match="exactly one of group_name or tag_key"):
        PolicyOverride(STRICT, group_name="g", tag_key="RiskTier", tag_value="high")


# --------------------------------------------------------------------------- evaluate


def run(
    policy: PolicySpec = DEFAULT_POLICY,
    signoffs: list[SignOffView] | None = None,
    metrics: list[MetricObservation] | None = None,
    card_status: str | None = None,
) -> Any:
    return evaluate(
        policy,
        signoffs=full_signoffs() if signoffs is None else signoffs,
        metrics=GOOD_METRICS if metrics is None else metrics,
        card_status=card_status,
        current_fingerprint=FP,
    )


def test_all_approvals_and_gates_pass_is_approved() -> None:
    result = run(GATED)
    assert result.decision == "Approved"
    assert result.reasons == []
    assert result.all_gates_pass
    assert result.missing_roles == []
    assert [g.status for g in result.gates] == ["pass", "pass"]
    assert result.gates[0].reason == "auc = 0.91 ≥ 0.85"
    assert result.gates[0].observed == 0.91
    assert result.gates[1].reason == "|DPPL[Gender=0]| = 0.05 ≤ 0.1"
    assert result.card_check == "not_required"
    assert all(r.satisfied for r in result.roles)


def test_missing_role_is_pending_with_reason() -> None:
    result = run(signoffs=full_signoffs()[:2])
    assert result.decision == "Pending"
    assert result.missing_roles == ["compliance"]
    assert result.reasons == ["compliance needs 1 more approval (0 of 1)"]


def test_any_rejection_is_rejected() -> None:
    signoffs = full_signoffs()[:2] + [so("carol", "compliance", "reject", comment="PII in training data")]
    result = run(signoffs=signoffs)
    assert result.decision == "Rejected"
    assert result.reasons == ["rejected by compliance carol: PII in training data"]
    compliance = result.roles[2]
    assert compliance.rejections == [signoffs[2]]
    assert not compliance.satisfied


def test_rejection_wins_over_complete_approvals() -> None:
    policy = PolicySpec(name="p", required_roles={"ml-lead": 1, "fairness": 1})
    signoffs = [so("alice", "ml-lead"), so("bob", "fairness"), so("carol", "fairness", "reject")]
    assert run(policy, signoffs).decision == "Rejected"


def test_rejection_in_role_no_longer_required_still_rejects() -> None:
    signoffs = [*full_signoffs(), so("dave", "security", "reject", comment="open CVE")]
    result = run(signoffs=signoffs)
    assert result.decision == "Rejected"
    assert result.reasons == ["rejected by security dave (a role this policy does not require): open CVE"]


def test_stale_approval_is_not_counted_and_needs_redo() -> None:
    signoffs = full_signoffs()
    signoffs[0] = so("alice", "ml-lead", fp=OLD_FP)
    result = run(signoffs=signoffs)
    assert result.decision == "Pending"
    ml = result.roles[0]
    assert ml.approvals == [] and ml.stale == [signoffs[0]] and ml.remaining == 1
    assert result.reasons == [
        "ml-lead needs 1 more approval (0 of 1); stale and must be redone because the package changed since: "
        "alice's approval"
    ]


def test_stale_rejection_does_not_reject() -> None:
    signoffs = full_signoffs()[:2] + [so("carol", "compliance", "reject", fp=OLD_FP)]
    result = run(signoffs=signoffs)
    assert result.decision == "Pending"
    assert result.roles[2].stale == [signoffs[2]]
    assert "carol's rejection" in result.reasons[0]


def test_resigned_after_stale_counts_once() -> None:
    signoffs = full_signoffs() + [so("alice", "ml-lead", fp=OLD_FP, at=T0 - timedelta(days=2))]
    result = run(signoffs=signoffs)
    assert result.decision == "Approved"
    assert result.roles[0].stale == []  # superseded by alice's newer sign-off


def test_gate_fail_keeps_pending() -> None:
    metrics = [MetricObservation("auc", 0.80), MetricObservation("DPPL", 0.02)]
    result = run(GATED, metrics=metrics)
    assert result.decision == "Pending"
    assert result.gates[0].status == "fail"
    assert result.gates[0].observed == 0.80
    assert result.gates[0].reason == "auc = 0.80 is below 0.85"
    assert result.reasons == ["gate auc >= 0.85 failed: auc = 0.80 is below 0.85"]
    assert not result.all_gates_pass


def test_gate_missing_keeps_pending() -> None:
    result = run(GATED, metrics=[MetricObservation("DPPL", 0.0)])
    assert result.decision == "Pending"
    assert result.gates[0].status == "missing"
    assert result.gates[0].observed is None
    assert result.gates[0].reason == "no metric named auc in the evaluation reports"
    assert result.reasons == ["gate auc >= 0.85 cannot be checked: no metric named auc in the evaluation reports"]


def test_none_value_counts_as_missing() -> None:
    result = run(GATED, metrics=[MetricObservation("auc", None), MetricObservation("DPPL", 0.0)])
    assert result.gates[0].status == "missing"
    assert result.gates[0].reason == "auc has no value in the evaluation reports"
    assert result.decision == "Pending"


def test_card_required_but_draft_keeps_pending() -> None:
    policy = PolicySpec(name="carded", require_card_approved=True)
    result = run(policy, card_status="Draft")
    assert result.decision == "Pending"
    assert result.card_check == "fail"
    assert result.card_reason == "the model card is Draft; the policy requires it to be Approved"
    assert result.reasons == [result.card_reason]
    no_card = run(policy, card_status=None)
    assert no_card.card_check == "fail" and "no model card" in no_card.card_reason
    approved = run(policy, card_status="Approved")
    assert approved.card_check == "pass" and approved.decision == "Approved"


def test_facet_worst_case_decides_and_names_facet() -> None:
    policy = PolicySpec(name="bias", gates=(MetricGate.parse("abs(DPPL) <= 0.1"),))
    metrics = [
        MetricObservation("DPPL", 0.02, facet="Gender=0", kind="bias"),
        MetricObservation("dppl", -0.30, facet="Age=young", kind="bias"),
        MetricObservation("DPPL", 0.12, facet="Region=EU", kind="bias"),
    ]
    result = run(policy, metrics=metrics)
    gate = result.gates[0]
    assert gate.status == "fail"
    assert gate.observed == -0.30
    assert gate.reason == "|DPPL[Age=young]| = 0.30 (value -0.30) is above 0.1; also failing: DPPL[Region=EU]"
    assert result.decision == "Pending"
    # All facets within bounds -> pass, reported against the worst one.
    ok = run(policy, metrics=[MetricObservation("DPPL", 0.02, "Gender=0"), MetricObservation("DPPL", -0.08, "Age=1")])
    assert ok.gates[0].status == "pass"
    assert ok.gates[0].observed == -0.08
    assert ok.gates[0].reason == "|DPPL[Age=1]| = 0.08 ≤ 0.1 (worst of 2 values)"


def test_faceted_gate_only_looks_at_its_facet() -> None:
    policy = PolicySpec(name="bias", gates=(MetricGate.parse("DPPL[Gender=0] <= 0.1"),))
    metrics = [MetricObservation("DPPL", 0.05, facet="gender = 0"), MetricObservation("DPPL", 0.9, facet="Age=1")]
    assert run(policy, metrics=metrics).gates[0].status == "pass"
    missing = run(policy, metrics=[MetricObservation("DPPL", 0.9, facet="Age=1")]).gates[0]
    assert missing.status == "missing"
    assert missing.reason == "no metric named DPPL for facet Gender=0 in the evaluation reports"


def test_two_signoffs_required_for_a_role() -> None:
    policy = PolicySpec(name="two-fair", required_roles={"ml-lead": 1, "fairness": 2})
    one = [so("alice", "ml-lead"), so("bob", "fairness")]
    result = run(policy, one)
    assert result.decision == "Pending"
    assert result.roles[1].remaining == 1
    assert result.reasons == ["fairness needs 1 more approval (1 of 2)"]
    two = [*one, so("carol", "fairness")]
    assert run(policy, two).decision == "Approved"


def test_one_person_counts_for_one_role_only() -> None:
    policy = PolicySpec(name="p", required_roles={"ml-lead": 1, "fairness": 1})
    signoffs = [so("alice", "ml-lead", at=T0), so("alice", "fairness", at=T0 + timedelta(minutes=5))]
    result = run(policy, signoffs)
    assert result.decision == "Pending"
    assert result.missing_roles == ["fairness"]
    assert any("alice's fairness sign-off does not count" in r for r in result.reasons)


def test_gate_fail_sentences_per_operator() -> None:
    cases = {
        "auc > 0.85": (0.85, "auc = 0.85 is not above 0.85"),
        "mse <= 4": (5.5, "mse = 5.50 is above 4.0"),
        "mse < 4": (4.0, "mse = 4.00 is not below 4.0"),
        "version == 2": (3.0, "version = 3.00 is not equal to 2.0"),
        "auc >= 0.85": (0.84999, "auc = 0.84999 is below 0.85"),
    }
    for text, (value, reason) in cases.items():
        gate = MetricGate.parse(text)
        result = run(PolicySpec(name="p", gates=(gate,)), metrics=[MetricObservation(gate.metric, value)])
        assert result.gates[0].status == "fail", text
        assert result.gates[0].reason == reason


# --------------------------------------------------------------------------- check_can_sign


def can_sign(
    *,
    user: str = "dave",
    roles: set[str] | None = None,
    role: str = "fairness",
    signoffs: list[SignOffView] | None = None,
    registered_by: int | None = 99,
    status: str = "PendingManualApproval",
    deleted: bool = False,
    policy: PolicySpec = DEFAULT_POLICY,
) -> None:
    check_can_sign(
        policy,
        user_id=USERS[user],
        username=user,
        user_roles={role} if roles is None else roles,
        role=role,
        signoffs=signoffs or [],
        current_fingerprint=FP,
        registered_by_user_id=registered_by,
        package_status=status,
        package_deleted=deleted,
    )


def refused(**kwargs: Any) -> SignOffNotAllowed:
    with pytest.raises(SignOffNotAllowed) as exc:
        can_sign(**kwargs)
    return exc.value


def test_can_sign_happy_path() -> None:
    can_sign()  # no exception
    can_sign(registered_by=None)


def test_cannot_sign_role_not_in_policy() -> None:
    err = refused(role="security", roles={"security"})
    assert err.code == "role_not_required"
    assert str(err) == (
        "The 'security' role is not required by policy 'default' (required roles: ml-lead, fairness, compliance)."
    )


def test_cannot_sign_without_holding_role() -> None:
    err = refused(role="fairness", roles={"ml-lead"})
    assert err.code == "role_not_held"
    assert str(err) == "dave does not hold the fairness role."


def test_cannot_sign_second_role() -> None:
    err = refused(role="fairness", roles={"ml-lead", "fairness"}, signoffs=[so("dave", "ml-lead")])
    assert err.code == "separation_of_duties"
    assert "already signed off this model package as ml-lead" in str(err)
    assert "at most one role" in str(err)


def test_cannot_sign_same_role_twice() -> None:
    err = refused(role="fairness", signoffs=[so("dave", "fairness", "reject")])
    assert err.code == "already_signed"
    assert str(err) == "dave has already signed off this model package as fairness."


def test_can_resign_same_role_after_stale() -> None:
    can_sign(role="fairness", signoffs=[so("dave", "fairness", fp=OLD_FP)])


def test_registrant_cannot_sign() -> None:
    err = refused(registered_by=USERS["dave"])
    assert err.code == "registrant"
    assert "registered this model package and cannot sign it off" in str(err)


@pytest.mark.parametrize("status", ["Approved", "Rejected"])
def test_cannot_sign_decided_package(status: str) -> None:
    err = refused(status=status)
    assert err.code == "already_decided"
    assert f"already decided (status {status})" in str(err)


def test_cannot_sign_deleted_package() -> None:
    err = refused(deleted=True)
    assert err.code == "deleted"
    assert "deleted from the registry" in str(err)


def test_cannot_sign_full_role() -> None:
    err = refused(role="fairness", signoffs=[so("bob", "fairness")])
    assert err.code == "role_complete"
    assert str(err) == "The fairness role already has its 1 sign-off."
    # A stale approval does not fill the role.
    can_sign(role="fairness", signoffs=[so("bob", "fairness", fp=OLD_FP)])
    # With two required, one current approval leaves room.
    two = PolicySpec(name="two", required_roles={"fairness": 2})
    can_sign(role="fairness", signoffs=[so("bob", "fairness")], policy=two)
    err2 = refused(role="fairness", signoffs=[so("bob", "fairness"), so("carol", "fairness")], policy=two)
    assert str(err2) == "The fairness role already has its 2 sign-offs."


# --------------------------------------------------------------------------- approval_description


def test_approval_description_approved() -> None:
    text = approval_description(DEFAULT_POLICY, list(reversed(full_signoffs())), decision="Approved")
    assert text == (
        "Approved via governance dashboard: ml-lead alice (2026-11-24), fairness bob (2026-11-24), "
        "compliance carol (2026-11-25)"
    )


def test_approval_description_rejected_plain_text() -> None:
    signoffs = [so("alice", "ml-lead"), so("bob", "fairness", "reject", comment="DPPL too high\nfor\tGender=0\x07")]
    text = approval_description(DEFAULT_POLICY, signoffs, decision="Rejected")
    assert text == "Rejected by fairness bob: DPPL too high for Gender=0"


def test_approval_description_truncates_comments_first() -> None:
    signoffs = [
        so("bob", "fairness", "reject", comment="x" * 5000),
        so("carol", "compliance", "reject", comment="short reason"),
    ]
    text = approval_description(DEFAULT_POLICY, signoffs, decision="Rejected", limit=1024)
    assert len(text) <= 1024
    assert text.startswith("Rejected by fairness bob: xxx")
    assert "…" in text
    assert text.endswith("; compliance carol: short reason")


def test_approval_description_truncates_names_after_comments() -> None:
    signoffs = [
        SignOffView(i, "n" * 400 + str(i), role, "reject", FP, T0, comment="z" * 400)
        for i, role in enumerate(["ml-lead", "fairness", "compliance"])
    ]
    text = approval_description(DEFAULT_POLICY, signoffs, decision="Rejected", limit=300)
    assert len(text) <= 300
    assert "z" not in text  # comments are dropped before names are shortened
    assert text.count("…") == 3
    assert text.startswith("Rejected by ml-lead nnn")
    assert "fairness n" in text and "compliance n" in text


@pytest.mark.parametrize("limit", [1, 5, 20, 60, 1024])
def test_approval_description_never_exceeds_limit(limit: int) -> None:
    approvals = full_signoffs()
    text = approval_description(DEFAULT_POLICY, approvals, decision="Approved", limit=limit)
    assert 1 <= len(text) <= limit


def test_approval_description_bad_decision() -> None:
    with pytest.raises(PolicyError):
        approval_description(DEFAULT_POLICY, [], decision="Pending")


# --------------------------------------------------------------------------- role_flags_for


def test_role_flags_for() -> None:
    signoffs = [
        so("alice", "ml-lead"),
        so("bob", "fairness", fp=OLD_FP),
        so("carol", "compliance", "reject"),
    ]
    assert role_flags_for(DEFAULT_POLICY, signoffs, FP) == {"MLEngineerApproved": "true"}
    assert role_flags_for(DEFAULT_POLICY, full_signoffs(), FP) == {
        "MLEngineerApproved": "true",
        "FairnessApproved": "true",
        "ComplianceApproved": "true",
    }
    two = PolicySpec(name="two", required_roles={"fairness": 2, "security": 1})
    assert role_flags_for(two, [so("bob", "fairness"), so("dave", "security")], FP) == {"SecurityApproved": "true"}


# --------------------------------------------------------------------------- sla_state


@pytest.mark.parametrize(
    ("hours", "state"),
    [
        (0, "ok"),
        (53.99, "ok"),
        (54, "due_soon"),  # exactly 75% of 72h
        (72, "due_soon"),  # at the deadline, not yet past it
        (72.01, "overdue"),
        (500, "overdue"),
    ],
)
def test_sla_state_boundaries(hours: float, state: str) -> None:
    result, age = sla_state(T0, T0 + timedelta(hours=hours), 72)
    assert result == state
    assert age == pytest.approx(hours)


def test_sla_state_future_creation_and_bad_sla() -> None:
    assert sla_state(T0, T0 - timedelta(hours=3), 24) == ("ok", 0.0)
    with pytest.raises(PolicyError):
        sla_state(T0, T0, 0)
