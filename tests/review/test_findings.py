"""The finding services: who may raise, move to remediation, close and accept (role x action x state),
refusals, blocking in the verdict and the stored queue row, carry-over, approve with conditions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from registry_app.models import ApprovalPolicy, AuditLogEntry, Decision, Finding, ModelPackage, ReviewState
from registry_app.models.registry import ApprovalStatus
from registry_app.review.finding_list import applicable_findings
from registry_app.review.findings import (
    ConditionInput,
    FindingNotAllowed,
    finding_accept_risk,
    finding_close,
    finding_raise,
    finding_remediate,
)
from registry_app.review.policy import DESCRIPTION_LIMIT, SignOffNotAllowed
from registry_app.review.queue_state import review_state_refresh
from registry_app.review.signoffs import review_now, signoff_create
from tests.factories import ModelPackageFactory, ModelPackageGroupFactory
from tests.personas import make_user

pytestmark = pytest.mark.django_db

EVIDENCE = "https://wiki.example.com/evidence/1"


def _due(days: int = 30) -> dt.date:
    return timezone.localdate() + dt.timedelta(days=days)


@pytest.fixture
def package() -> ModelPackage:
    package = ModelPackageFactory(group=ModelPackageGroupFactory(name="credit-risk"), version=1)
    review_state_refresh([package.pk])
    return package


def raise_on(package: ModelPackage, user: Any, severity: str = "high", **extra: Any) -> Finding:
    fields: dict[str, Any] = {"title": "PSI drift on age", "owner_email": "risk@example.com", "due_date": _due()}
    fields.update(extra)
    return finding_raise(user=user, package_id=package.pk, severity=severity, **fields)


# --------------------------------------------------------------------------------------------- raise


@pytest.mark.parametrize(
    ("persona", "allowed"),
    [("mlead", True), ("fair", True), ("comp", True), ("staff", True), ("viewer", False), ("nobody", False)],
)
def test_who_may_raise(package: ModelPackage, personas: dict[str, Any], persona: str, allowed: bool) -> None:
    if allowed:
        finding = raise_on(package, personas[persona])
        assert finding.state == Finding.State.OPEN and finding.raised_by == personas[persona]
        entry = AuditLogEntry.objects.get(action="finding.raised")
        assert entry.package_id == package.pk and entry.subject_id == str(finding.pk)
    else:
        with pytest.raises(FindingNotAllowed) as exc:
            raise_on(package, personas[persona])
        assert exc.value.code == "forbidden"
        assert not Finding.objects.exists() and not AuditLogEntry.objects.filter(action="finding.raised").exists()


def test_an_inactive_user_may_not_raise(package: ModelPackage) -> None:
    user = make_user("gone", "fairness", is_active=False)
    with pytest.raises(FindingNotAllowed) as exc:
        raise_on(package, user)
    assert exc.value.code == "not_authenticated"


@pytest.mark.parametrize(
    ("severity", "blocks"), [("low", False), ("medium", False), ("high", True), ("critical", True)]
)
def test_blocking_defaults_from_the_policy(
    package: ModelPackage, personas: dict[str, Any], severity: str, blocks: bool
) -> None:
    assert raise_on(package, personas["fair"], severity).blocks_approval is blocks


def test_a_policy_may_change_the_blocking_severities_and_the_reviewer_may_override(
    package: ModelPackage, personas: dict[str, Any]
) -> None:
    ApprovalPolicy.objects.create(
        name="p", is_default=True, spec={"name": "p", "finding_blocking_severities": ["critical"]}
    )
    assert raise_on(package, personas["fair"], "high").blocks_approval is False
    assert raise_on(package, personas["fair"], "low", blocks_approval=True).blocks_approval is True
    assert raise_on(package, personas["fair"], "critical", blocks_approval=False).blocks_approval is False


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"title": "  "}, "title"),
        ({"title": "x" * 201}, "200"),
        ({"owner_email": ""}, "owner"),
        ({"owner_email": "not-an-address"}, "e-mail"),
        ({"due_date": timezone.localdate() - dt.timedelta(days=1)}, "past"),
        ({"owner_id": 999999}, "active user"),
    ],
)
def test_raise_refuses_bad_input(
    package: ModelPackage, personas: dict[str, Any], fields: dict[str, Any], needle: str
) -> None:
    with pytest.raises(FindingNotAllowed) as exc:
        raise_on(package, personas["fair"], **fields)
    assert exc.value.code == "invalid" and needle in exc.value.message
    assert not Finding.objects.exists()


def test_raise_refuses_an_unknown_severity(package: ModelPackage, personas: dict[str, Any]) -> None:
    with pytest.raises(FindingNotAllowed, match="severity"):
        raise_on(package, personas["fair"], "catastrophic")


# --------------------------------------------------------------------------------------------- transitions

ACTORS = ("owner", "raiser", "comp", "other_reviewer", "viewer")
EXPECTED = {  # action -> actors allowed
    "remediate": {"owner", "raiser", "comp"},
    "close": {"owner", "raiser", "comp"},
    "accept": {"comp"},
}


def _act(action: str, user: Any, finding: Finding) -> Finding:
    if action == "remediate":
        return finding_remediate(user=user, finding_id=finding.pk)
    if action == "close":
        return finding_close(user=user, finding_id=finding.pk, comment="Fixed in v2.", evidence_url=EVIDENCE)
    return finding_accept_risk(user=user, finding_id=finding.pk, justification="Low exposure; monitored.")


@pytest.fixture
def cast(personas: dict[str, Any]) -> dict[str, Any]:
    return {
        "owner": make_user("owner-person"),  # owns it, holds no role
        "raiser": personas["fair"],
        "comp": personas["comp"],
        "other_reviewer": personas["mlead"],
        "viewer": personas["viewer"],
    }


@pytest.mark.parametrize("action", sorted(EXPECTED))
@pytest.mark.parametrize("actor", ACTORS)
def test_who_may_act_on_an_open_finding(package: ModelPackage, cast: dict[str, Any], action: str, actor: str) -> None:
    finding = raise_on(package, cast["raiser"], owner_id=cast["owner"].pk, owner_email="")
    if actor in EXPECTED[action]:
        done = _act(action, cast[actor], finding)
        state = {"remediate": "in_remediation", "close": "closed", "accept": "accepted_risk"}[action]
        assert Finding.objects.get(pk=finding.pk).state == state == done.state
        audit = {"remediate": "finding.remediation", "close": "finding.closed", "accept": "finding.risk_accepted"}
        assert AuditLogEntry.objects.filter(action=audit[action], subject_id=str(finding.pk)).count() == 1
    else:
        with pytest.raises(FindingNotAllowed) as exc:
            _act(action, cast[actor], finding)
        assert exc.value.code == "forbidden"
        assert Finding.objects.get(pk=finding.pk).state == Finding.State.OPEN


def test_the_owning_team_address_may_act(package: ModelPackage, personas: dict[str, Any]) -> None:
    finding = raise_on(package, personas["fair"], owner_email="Risk@Example.com")
    member = make_user("risk-team", email="risk@example.com")
    assert finding_remediate(user=member, finding_id=finding.pk).state == Finding.State.IN_REMEDIATION


@pytest.mark.parametrize("action", sorted(EXPECTED))
@pytest.mark.parametrize("state", ["closed", "accepted_risk"])
def test_nothing_moves_a_finding_that_is_done(
    package: ModelPackage, cast: dict[str, Any], action: str, state: str
) -> None:
    finding = raise_on(package, cast["raiser"])
    Finding.objects.filter(pk=finding.pk).update(state=state)
    with pytest.raises(FindingNotAllowed) as exc:
        _act(action, cast["comp"], finding)
    assert exc.value.code == "already_done"


def test_remediation_then_close(package: ModelPackage, cast: dict[str, Any]) -> None:
    finding = raise_on(package, cast["raiser"])
    finding_remediate(user=cast["raiser"], finding_id=finding.pk)
    with pytest.raises(FindingNotAllowed) as exc:
        finding_remediate(user=cast["raiser"], finding_id=finding.pk)
    assert exc.value.code == "already_done"
    closed = finding_close(user=cast["comp"], finding_id=finding.pk, comment="Retrained.", evidence_url=EVIDENCE)
    assert closed.closed_by == cast["comp"] and closed.closed_at is not None and closed.evidence_url == EVIDENCE


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "ftp://files.example.com/x", "data:text/html,hi", "", "https://"]
)
def test_close_needs_an_http_evidence_link(package: ModelPackage, cast: dict[str, Any], url: str) -> None:
    finding = raise_on(package, cast["raiser"])
    with pytest.raises(FindingNotAllowed) as exc:
        finding_close(user=cast["comp"], finding_id=finding.pk, comment="Done.", evidence_url=url)
    assert exc.value.code == "invalid"


def test_close_needs_a_comment_and_accept_a_justification(package: ModelPackage, cast: dict[str, Any]) -> None:
    finding = raise_on(package, cast["raiser"])
    with pytest.raises(FindingNotAllowed, match="comment"):
        finding_close(user=cast["comp"], finding_id=finding.pk, comment=" ", evidence_url=EVIDENCE)
    with pytest.raises(FindingNotAllowed, match="justification"):
        finding_accept_risk(user=cast["comp"], finding_id=finding.pk, justification="")
    assert Finding.objects.get(pk=finding.pk).state == Finding.State.OPEN


def test_an_unknown_finding_is_refused(cast: dict[str, Any]) -> None:
    with pytest.raises(FindingNotAllowed) as exc:
        finding_remediate(user=cast["comp"], finding_id=424242)
    assert exc.value.code == "not_found"


# --------------------------------------------------------------------------------------------- blocking


def test_an_open_blocking_finding_blocks_approval_like_a_gate(package: ModelPackage, personas: dict[str, Any]) -> None:
    finding = raise_on(package, personas["fair"], "high")
    reason = f'finding {finding.ref} "PSI drift on age" (high, open) blocks approval'
    assert reason in review_now(package).state.blocked_by
    assert reason in ReviewState.objects.get(package=package).blocked_by
    with pytest.raises(SignOffNotAllowed) as exc:
        signoff_create(user=personas["mlead"], package_id=package.pk, role="ml-lead", decision="approve", comment="")
    assert exc.value.code == "finding_blocked" and finding.ref in exc.value.message
    # A rejection is still possible.
    signoff_create(user=personas["mlead"], package_id=package.pk, role="ml-lead", decision="reject", comment="PSI")

    finding_close(user=personas["fair"], finding_id=finding.pk, comment="Fixed.", evidence_url=EVIDENCE)
    assert review_now(package).state.blocked_by == []
    assert ReviewState.objects.get(package=package).blocked_by == ""


def test_a_non_blocking_finding_does_not_block(package: ModelPackage, personas: dict[str, Any]) -> None:
    raise_on(package, personas["fair"], "medium")
    assert review_now(package).state.blocked_by == []
    signoff_create(user=personas["mlead"], package_id=package.pk, role="ml-lead", decision="approve", comment="")


def test_risk_acceptance_unblocks(package: ModelPackage, personas: dict[str, Any]) -> None:
    finding = raise_on(package, personas["fair"], "critical")
    finding_accept_risk(user=personas["comp"], finding_id=finding.pk, justification="Accepted for Q3 only.")
    assert review_now(package).state.blocked_by == []


def test_open_findings_carry_over_to_later_versions(personas: dict[str, Any]) -> None:
    group = ModelPackageGroupFactory(name="churn")
    v1, v2, v3 = (ModelPackageFactory(group=group, version=v) for v in (1, 2, 3))
    review_state_refresh([v1.pk, v2.pk, v3.pk])
    finding = raise_on(v2, personas["fair"], "high")
    done = raise_on(v2, personas["fair"], "low", title="Typo in the card")
    finding_close(user=personas["fair"], finding_id=done.pk, comment="Fixed.", evidence_url=EVIDENCE)
    assert review_now(v1).state.blocked_by == []  # an earlier version: not concerned
    for later in (v2, v3):
        assert any(finding.ref in reason for reason in review_now(later).state.blocked_by)
        assert finding.ref in ReviewState.objects.get(package=later).blocked_by
    on_v3 = applicable_findings(v3, personas["viewer"])
    assert [(f.pk, f.carried_over_from) for f in on_v3] == [(finding.pk, 2)]  # the closed one stays on v2
    assert {f.pk for f in applicable_findings(v2, personas["viewer"])} == {finding.pk, done.pk}


# --------------------------------------------------------------------------------------------- conditions


def _approve_all(package: ModelPackage, personas: dict[str, Any], **fair: Any) -> Any:
    signoff_create(user=personas["mlead"], package_id=package.pk, role="ml-lead", decision="approve", comment="ok")
    result = signoff_create(
        user=personas["fair"], package_id=package.pk, role="fairness", decision="approve", comment="ok", **fair
    )
    last = signoff_create(
        user=personas["comp"], package_id=package.pk, role="compliance", decision="approve", comment=""
    )
    return result, last


def test_approve_with_conditions_creates_linked_findings_and_lists_them(
    package: ModelPackage, personas: dict[str, Any]
) -> None:
    existing = raise_on(package, personas["mlead"], "low", title="Retrain before Q3 with the 2026 data")
    due = _due(90)
    result, last = _approve_all(
        package,
        personas,
        conditions=[
            ConditionInput(title="Monitor DPPL monthly", severity="medium", owner_id=personas["mlead"].pk, due_date=due)
        ],
        condition_refs=[existing.pk],
    )
    created = Finding.objects.get(signoff=result.signoff)
    assert created.blocks_approval is False and created.raised_by == personas["fair"]
    assert set(result.signoff.conditions.all()) == {created, existing}
    decision = last.decision
    assert decision is not None and decision.status == ApprovalStatus.APPROVED
    assert (
        f"Conditions: {existing.ref} Retrain before Q3 with the 2026 data (due {_due().isoformat()}); "
        in decision.description
    )
    assert f"{created.ref} Monitor DPPL monthly (due {due.isoformat()})" in decision.description
    assert "/packages/credit-risk/1/" in decision.description
    assert last.pushes[-1].target_description == decision.description


def test_long_conditions_keep_the_description_within_the_limit(package: ModelPackage, personas: dict[str, Any]) -> None:
    conditions = [
        ConditionInput(
            title=f"{i} " + "monitor the population stability " * 6, severity="low", owner_email="a@example.com"
        )
        for i in range(10)
    ]
    _, last = _approve_all(package, personas, conditions=conditions)
    description = Decision.objects.get(package=package).description
    assert len(description) <= DESCRIPTION_LIMIT
    assert description.startswith("Approved via governance dashboard: ml-lead mlead")  # the approval text kept
    assert "Conditions: F-" in description and "/packages/credit-risk/1/" in description


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        (
            {
                "conditions": [
                    ConditionInput(title="x", severity="low", owner_email="a@example.com", blocks_approval=True)
                ]
            },
            "invalid",
        ),
        ({"condition_refs": [999999]}, "invalid"),
    ],
)
def test_bad_conditions_are_refused_and_nothing_is_recorded(
    package: ModelPackage, personas: dict[str, Any], kwargs: dict[str, Any], code: str
) -> None:
    with pytest.raises(SignOffNotAllowed) as exc:
        signoff_create(
            user=personas["fair"], package_id=package.pk, role="fairness", decision="approve", comment="", **kwargs
        )
    assert exc.value.code == code
    assert not package.signoffs.exists() and not Finding.objects.exists()


def test_a_rejection_carries_no_conditions(package: ModelPackage, personas: dict[str, Any]) -> None:
    with pytest.raises(SignOffNotAllowed) as exc:
        signoff_create(
            user=personas["fair"],
            package_id=package.pk,
            role="fairness",
            decision="reject",
            comment="no",
            conditions=[ConditionInput(title="x", severity="low", owner_email="a@example.com")],
        )
    assert exc.value.code == "invalid_conditions"


def test_a_closed_finding_cannot_be_a_condition(package: ModelPackage, personas: dict[str, Any]) -> None:
    finding = raise_on(package, personas["fair"], "low")
    finding_close(user=personas["fair"], finding_id=finding.pk, comment="Done.", evidence_url=EVIDENCE)
    with pytest.raises(SignOffNotAllowed, match=finding.ref):
        signoff_create(
            user=personas["fair"],
            package_id=package.pk,
            role="fairness",
            decision="approve",
            comment="",
            condition_refs=[finding.pk],
        )


def test_stored_rows_load_findings_in_one_query_for_the_batch(personas: dict[str, Any]) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from registry_app.review.review_rows import derive_rows

    group = ModelPackageGroupFactory(name="batch")
    packages = [ModelPackageFactory(group=group, version=v) for v in (1, 2, 3)]
    ids = [p.pk for p in packages]

    def derive() -> tuple[int, dict[int, Any]]:
        with CaptureQueriesContext(connection) as ctx:
            rows = derive_rows(ids)
        return len(ctx.captured_queries), rows

    first = raise_on(packages[0], personas["fair"], "high")
    few, _ = derive()
    for i in range(8):
        raise_on(packages[i % 3], personas["fair"], "critical", title=f"finding {i}")
    many, rows = derive()
    assert few == many == 9, (few, many)
    stored = rows[packages[2].pk].blocked_by  # every one carried over to v3; the column keeps 255 characters
    assert (
        stored.startswith(f'finding F-{first.pk} "PSI drift on age" (high, open) blocks approval; finding F-')
        and len(stored) <= 255
    )


def test_a_policy_exception_does_not_decide_past_an_open_blocking_finding(personas: dict[str, Any]) -> None:
    from registry_app.review.decisions import policy_exception_record
    from tests.factories import EvaluationReportFactory, MetricFactory

    package = ModelPackageFactory()
    MetricFactory(report=EvaluationReportFactory(package=package), name="auc", value=0.80)
    from registry_app.models import SignOff
    from registry_app.review.state import package_fingerprint

    fingerprint, _ = package_fingerprint(package)
    for persona, role in (("mlead", "ml-lead"), ("fair", "fairness"), ("comp", "compliance")):
        # Approvals recorded before the gate and the finding existed.
        SignOff.objects.create(
            package=package, user=personas[persona], role=role, decision="approve", fingerprint=fingerprint
        )
    ApprovalPolicy.objects.create(name="g", is_default=True, spec={"name": "g", "gates": ["auc >= 0.85"]})
    raise_on(package, personas["fair"], "critical")
    policy_exception_record(user=personas["comp"], package_id=package.pk, justification="board accepted")
    assert not Decision.objects.filter(package=package).exists()
