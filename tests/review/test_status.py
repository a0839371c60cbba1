"""The one display status of a version (``review.status``): every state, in the words every page uses."""

from __future__ import annotations

import datetime as dt

import pytest

from registry_app.review.policy import GateResult, MetricGate
from registry_app.review.status import (
    DecisionFacts,
    blocking_gates,
    gate_shortfall,
    status_of_row,
    version_status,
)

AT = dt.datetime(2026, 11, 3, 9, 30, tzinfo=dt.UTC)
PENDING = "PendingManualApproval"


def facts(kind: str = "policy", status: str = "Approved", by: str = "comp", description: str = "") -> DecisionFacts:
    return DecisionFacts(kind=kind, status=status, by=by, at=AT, description=description)


def test_pending_review_names_the_missing_roles() -> None:
    status = version_status(registry_status=PENDING, missing_roles=("fairness", "compliance"))
    assert (status.kind, status.label) == ("pending", "Pending review")
    assert status.detail == "waiting for fairness, compliance"
    assert status.open and not status.polling


def test_blocked_by_policy_says_which_gate_observed_vs_required() -> None:
    status = version_status(registry_status=PENDING, missing_roles=("compliance",), blocked_by=("auc 0.842 < 0.85",))
    assert (status.kind, status.label) == ("blocked", "Blocked by policy")
    assert status.detail == "auc 0.842 < 0.85; still missing compliance"
    assert status.open
    # Blocked with every role signed: never "waiting for nobody".
    assert version_status(registry_status=PENDING, blocked_by=("auc 0.842 < 0.85",)).text == (
        "Blocked by policy: auc 0.842 < 0.85"
    )


@pytest.mark.parametrize("push_state", ["pending", "sending"])
def test_decided_and_pushing_polls(push_state: str) -> None:
    status = version_status(registry_status=PENDING, outcome="Approved", push_state=push_state, decision=facts())
    assert (status.kind, status.label) == ("pushing", "Decided — pushing")
    assert "approved through the dashboard, deciding sign-off by comp on 2026-11-03 09:30 UTC" in status.detail
    assert status.polling and not status.open


def test_sent_but_not_yet_observed_is_still_pushing() -> None:
    status = version_status(registry_status=PENDING, push_state="sent", decision=facts())
    assert status.kind == "pushing" and status.polling


def test_failed_push_is_decided_not_pending() -> None:
    status = version_status(registry_status=PENDING, outcome="Approved", push_state="failed", decision=facts())
    assert status.label == "Decided — push failed" and not status.polling and not status.open


@pytest.mark.parametrize(
    ("decision", "kind", "words"),
    [
        (facts(), "approved", "approved through the dashboard, deciding sign-off by comp"),
        (
            facts("rejection", "Rejected", "fair"),
            "rejected",
            "rejected through the dashboard, deciding sign-off by fair",
        ),
    ],
)
def test_approved_and_rejected_through_the_dashboard(decision: DecisionFacts, kind: str, words: str) -> None:
    status = version_status(registry_status=decision.status, push_state="sent", decision=decision)
    assert status.kind == kind and words in status.detail and not status.open


def test_decided_outside_the_dashboard_says_by_whom() -> None:
    status = version_status(registry_status="Approved", modified_by="alice", modified_at=AT)
    assert status.label == "Approved"
    assert status.detail == "set outside the dashboard by alice on 2026-11-03 09:30 UTC"
    # A dashboard decision the registry no longer shows is not the explanation.
    later = version_status(registry_status="Approved", push_state="sent", decision=facts("rejection", "Rejected"))
    assert later.detail.startswith("set outside the dashboard")


def test_revoked_says_by_whom_and_why() -> None:
    decision = facts("revocation", "Rejected", "comp", "Approval revoked via governance dashboard by comp: leak")
    status = version_status(registry_status="Rejected", push_state="sent", decision=decision, missing_roles=("x",))
    assert (status.kind, status.label) == ("revoked", "Revoked")
    assert "revoked by comp" in status.detail and "leak" in status.detail
    assert not status.open and status.missing_roles == ()


def test_archived() -> None:
    status = version_status(registry_status="Rejected", push_state="sent", decision=facts("archive", "Rejected"))
    assert (status.kind, status.label) == ("archived", "Archived") and "archived by comp" in status.detail


def test_conflict_wins_over_pending() -> None:
    status = version_status(
        registry_status="Approved",
        push_state="conflict",
        decision=facts("revocation", "Rejected"),
        missing_roles=("a",),
    )
    assert status.label == "Conflict" and "registry shows Approved" in status.detail and not status.open


def test_deleted_wins_over_everything() -> None:
    status = version_status(registry_status=PENDING, deleted=True, push_state="conflict", missing_roles=("a",))
    assert status.kind == "deleted"


def test_queue_row_uses_the_same_words() -> None:
    row = {"outcome": "Pending", "missing_roles": ["fairness"], "blocked_by": "auc 0.9 < 0.95", "push_state": ""}
    assert status_of_row(row).text == "Blocked by policy: auc 0.9 < 0.95; still missing fairness"
    decided = {"outcome": "Rejected", "missing_roles": [], "blocked_by": "", "push_state": ""}
    assert status_of_row(decided).label == "Decided — pushing"
    conflict = {"outcome": "Pending", "missing_roles": ["fairness"], "blocked_by": "", "push_state": "conflict"}
    assert status_of_row(conflict).label == "Conflict"


@pytest.mark.parametrize(
    ("gate", "observed", "text"),
    [
        ("auc >= 0.85", 0.842, "auc 0.842 < 0.85"),
        ("mse <= 4", 4.5, "mse 4.5 > 4"),
        ("abs(DPPL) <= 0.1", -0.25, "|DPPL| 0.25 > 0.1"),
        ("DI[Gender=0] >= 0.8", 0.7, "DI[Gender=0] 0.7 < 0.8"),
    ],
)
def test_gate_shortfall(gate: str, observed: float, text: str) -> None:
    assert gate_shortfall(GateResult(MetricGate.parse(gate), "fail", observed, "")) == text


def test_blocking_gates_skip_passing_missing_and_waived() -> None:
    fail = GateResult(MetricGate.parse("auc >= 0.85"), "fail", 0.8, "")
    other = GateResult(MetricGate.parse("f1 >= 0.8"), "fail", 0.7, "")
    missing = GateResult(MetricGate.parse("mse <= 4"), "missing", None, "")
    passing = GateResult(MetricGate.parse("acc >= 0.5"), "pass", 0.9, "")
    assert blocking_gates([fail, other, missing, passing], waived=["f1 >= 0.8"]) == [fail]
    assert gate_shortfall(missing) == "mse: no value (requires mse <= 4)"
