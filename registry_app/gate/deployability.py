"""May this package be deployed? The deploy gate's rules, on the one review verdict. Reads only.

A version is deployable when it is Approved in the registry (the mirror), not deleted, and its
dashboard evidence is current:

* **dashboard approval**: a ``Decision`` of kind policy approved it and its decision push was
  delivered (``sent``), and no status change made outside the dashboard came after it;
* **content unchanged**: the sign-offs that decided it are current for the package's present
  fingerprint (``review.state.package_fingerprint``) and none was marked stale;
* **policy still satisfied**: ``review.state.verdict`` on the present sign-offs, metrics and card
  says Approved (a policy made stricter, or a card withdrawn, since the approval counts);
* **not revoked**: no revocation or archive decision after the approval, delivered or not.

A version Approved outside the dashboard is refused, unless its policy accepts automated approvals
(``accept_automated_approvals``) and the principal that set Approved (from CloudTrail) matches
one of its patterns, its gates pass when required, its card passes when required, and no current
sign-off rejects it. Then it is deployable with ``approved_automatically``.

``assess`` is pure over loaded inputs; ``gate.answers`` loads them (constant queries).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from registry_app.gate import evidence as ev
from registry_app.gate.inputs import PackageInputs, nearest_event, request_status
from registry_app.mirror.selectors import HEADLINE_METRICS
from registry_app.models import CloudTrailEvent, Decision, OutsideDecision, PushOutbox, SignOff
from registry_app.models.registry import ApprovalStatus
from registry_app.review.policy import APPROVED, REJECTED, MetricObservation, PolicyResult, PolicySpec
from registry_app.review.state import card_status_of, effective_status, package_fingerprint, signoff_views, verdict

__all__ = ["Assessment", "assess"]

# How far from the push's delivery (or the mirror's observation) the CloudTrail call may lie.
EVENT_BEFORE = dt.timedelta(days=7)
EVENT_AFTER = dt.timedelta(minutes=15)
_ENDING = (Decision.Kind.REVOCATION, Decision.Kind.ARCHIVE)


@dataclass
class Assessment:
    deployable: bool
    reasons: list[ev.Reason]
    evidence: ev.Evidence
    package_id: int


@dataclass(frozen=True)
class _Approval:
    """The dashboard's approving decision and its push, or the outside change that approved."""

    decision: Decision | None
    push: PushOutbox | None
    outside: OutsideDecision | None

    @property
    def delivered(self) -> bool:
        return self.push is not None and self.push.state == PushOutbox.State.SENT

    @property
    def outside_is_later(self) -> bool:
        """Whether the version's present Approved came from outside: a flagged change to Approved
        after the dashboard's delivered approval (or with no such approval at all)."""
        if self.outside is None:
            return False
        if not self.delivered or self.push is None or self.push.sent_at is None:
            return True
        return self.outside.observed_at > self.push.sent_at


def _approval(inputs: PackageInputs) -> _Approval:
    decision = next(
        (d for d in inputs.decisions if d.kind == Decision.Kind.POLICY and d.status == ApprovalStatus.APPROVED), None
    )
    push = None
    if decision is not None:
        push = next((p for p in inputs.pushes if p.decision_id == decision.pk and p.kind == "decision"), None)
    outside = next((o for o in inputs.outside if o.to_status == ApprovalStatus.APPROVED), None)
    return _Approval(decision, push, outside)


def _signoff_evidence(signoffs: list[SignOff], fingerprint: str) -> list[ev.SignoffEvidence]:
    return [
        ev.SignoffEvidence(
            user=s.user.get_username(),
            role=s.role,
            decision=s.decision,
            signed_at=s.created_at,
            comment=s.comment,
            current=s.stale_at is None and s.withdrawn_at is None and s.fingerprint == fingerprint,
        )
        for s in signoffs
    ]


def _changed_parts(reviewed: dict, current: dict) -> list[str]:
    if not isinstance(reviewed, dict) or not reviewed:
        return []
    return sorted(k for k in set(reviewed) | set(current) if k != "v" and reviewed.get(k) != current.get(k))


def _base_evidence(inputs: PackageInputs, policy: PolicySpec, fingerprint: str, status: str) -> ev.Evidence:
    package = inputs.package
    repro, missing = ev.reproducibility(package)
    job, generated_by = ev.training_job(package)
    names = set(HEADLINE_METRICS) | {g.metric.casefold() for g in policy.gates}
    return ev.Evidence(
        arn=package.arn,
        group=package.group.name,
        source=package.source.name,
        version=package.version,
        approval_status=str(package.approval_status),
        effective_status=status,
        policy=policy.name,
        current_fingerprint=fingerprint,
        card_status=card_status_of(package),
        signoffs=_signoff_evidence(inputs.signoffs, fingerprint),
        metrics=ev.metric_evidence(inputs.metrics, names),
        reproducibility=repro,
        missing_reproducibility=missing,
        training_job=job,
        generated_by=generated_by,
    )


def assess(inputs: PackageInputs, policy: PolicySpec) -> Assessment:
    """Deployability of one package from its loaded inputs (no query: the package's group,
    source and card are selected with it)."""
    package = inputs.package
    fingerprint, detail = package_fingerprint(package, policy=policy, reports=inputs.reports)
    status = effective_status(package, inputs.pushes)
    state = verdict(
        package,
        policy=policy,
        signoffs=signoff_views(inputs.signoffs),
        metrics=[MetricObservation(m.name, m.value, m.facet, m.kind) for m in inputs.metrics],
        fingerprint=fingerprint,
        status=status,
    )
    evidence = _base_evidence(inputs, policy, fingerprint, status)
    evidence.gates = ev.gate_evidence(state.result.gates)
    reasons: list[ev.Reason] = []
    if state.deleted:
        reasons.append(ev.Reason(ev.DELETED, "The version (or its group) was deleted from the registry."))
    if package.approval_status != ApprovalStatus.APPROVED:
        reasons.append(
            ev.Reason(ev.NOT_APPROVED, f"The registry shows {package.approval_status or 'no status'}, not Approved.")
        )
    approval = _approval(inputs)
    approved_at = approval.push.sent_at if approval.delivered and approval.push else None
    if approval.outside_is_later and approval.outside is not None:
        approved_at = approval.outside.changed_at or approval.outside.observed_at
    _revocation(inputs, approved_at, status, evidence, reasons)
    if approval.delivered and not approval.outside_is_later:
        _dashboard(inputs, approval, state.result.decision, state.result.reasons, detail, evidence, reasons)
        return Assessment(deployable=not reasons, reasons=reasons, evidence=evidence, package_id=package.pk)
    outside = _outside(inputs, approval)
    approved = package.approval_status == ApprovalStatus.APPROVED
    if policy.accept_automated_approvals is not None and outside is not None and approved:
        _automated(outside, policy, state.result, evidence, reasons)
    else:
        _not_by_dashboard(inputs, approval, outside, evidence, reasons)
    return Assessment(deployable=not reasons, reasons=reasons, evidence=evidence, package_id=package.pk)


def _revocation(
    inputs: PackageInputs, approved_at: dt.datetime | None, status: str, evidence: ev.Evidence, reasons: list
) -> None:
    ending = [d for d in inputs.decisions if d.kind in _ENDING and (approved_at is None or d.created_at > approved_at)]
    if ending:
        latest = ending[0]
        evidence.revoked_at = latest.created_at
        who = latest.decided_by.get_username() if latest.decided_by else "compliance"
        reasons.append(
            ev.Reason(
                ev.REVOKED,
                f"{latest.get_kind_display()} by {who} at {latest.created_at:%Y-%m-%d %H:%M} UTC: {latest.description}",
            )
        )
    elif status != inputs.package.approval_status:
        reasons.append(
            ev.Reason(ev.DECISION_PENDING, f"A dashboard decision setting {status} is on its way to the registry.")
        )


def _dashboard(
    inputs: PackageInputs,
    approval: _Approval,
    decision: str,
    policy_reasons: list[str],
    detail: dict,
    evidence: ev.Evidence,
    reasons: list[ev.Reason],
) -> None:
    assert approval.decision is not None and approval.push is not None
    push, decision_row = approval.push, approval.decision
    evidence.approved_via = ev.VIA_DASHBOARD
    evidence.approved_at = push.sent_at
    evidence.approved_by = decision_row.decided_by.get_username() if decision_row.decided_by else push.acting_username
    evidence.decision_id = decision_row.pk
    evidence.approval_description = decision_row.description
    if push.sent_at is not None:
        # The push assumes the source's role with the acting person as SourceIdentity: prefer their call.
        mine = [e for e in inputs.status_events if e.actor_name.casefold() == push.acting_username.casefold()]
        event = nearest_event(mine, APPROVED, push.sent_at, before=EVENT_BEFORE, after=EVENT_AFTER) or nearest_event(
            inputs.status_events, APPROVED, push.sent_at, before=EVENT_BEFORE, after=EVENT_AFTER
        )
        evidence.cloudtrail_event_id = event.event_id if event is not None else None
    deciding = next((s for s in inputs.signoffs if s.pk == push.signoff_id), None)
    if deciding is None:  # pushes always name their sign-off; older rows may not
        deciding = next((s for s in reversed(inputs.signoffs) if s.created_at <= decision_row.created_at), None)
    reviewed = deciding.fingerprint if deciding is not None else None
    evidence.reviewed_fingerprint = reviewed
    decided_by = [s for s in inputs.signoffs if s.fingerprint == reviewed and s.created_at <= decision_row.created_at]
    stale = [s for s in decided_by if s.stale_at is not None]
    if reviewed != evidence.current_fingerprint or stale:
        evidence.changed_since_review = _changed_parts(deciding.fingerprint_detail if deciding else {}, detail)
        what = ", ".join(evidence.changed_since_review) or "reviewed content"
        reasons.append(
            ev.Reason(
                ev.CONTENT_CHANGED, f"The package changed since it was reviewed ({what}); the sign-offs are stale."
            )
        )
    elif decision != APPROVED:
        text = "; ".join(policy_reasons) or f"the policy now says {decision}"
        reasons.append(ev.Reason(ev.POLICY_NOT_SATISFIED, f"The policy is no longer satisfied: {text}."))


@dataclass(frozen=True)
class _Outside:
    """Who set Approved outside the dashboard, as far as it is known."""

    principal: str  # an IAM ARN, or "" when not known
    source: str  # cloudtrail | outside_decision | ""
    event: CloudTrailEvent | None
    at: dt.datetime | None
    who: str  # a readable name
    flagged: OutsideDecision | None


def _outside(inputs: PackageInputs, approval: _Approval) -> _Outside | None:
    """The outside approval behind the present Approved: the flagged change (with its CloudTrail
    call, attached or matched here), else the newest call that set Approved; None if neither."""
    flagged = approval.outside if approval.outside_is_later else None
    if flagged is not None:
        event = flagged.event
        if event is None:
            at = flagged.changed_at or flagged.observed_at
            event = nearest_event(inputs.status_events, APPROVED, at, before=EVENT_BEFORE, after=EVENT_AFTER)
    else:
        event = next((e for e in inputs.status_events if request_status(e.raw) == APPROVED), None)
        if event is None:
            return None
    principal, source = "", ""
    if event is not None and event.actor_arn:
        principal, source = event.actor_arn, "cloudtrail"
    elif flagged is not None and flagged.actor_arn:
        principal, source = flagged.actor_arn, "outside_decision"
    at = event.event_time if event is not None else None
    if flagged is not None:
        at = at or flagged.changed_at or flagged.observed_at
    who = (event.actor_name if event else "") or (flagged.actor_name if flagged else "") or principal
    return _Outside(principal, source, event, at, who, flagged)


def _automated(
    outside: _Outside, policy: PolicySpec, result: PolicyResult, evidence: ev.Evidence, reasons: list[ev.Reason]
) -> None:
    accepts = policy.accept_automated_approvals
    assert accepts is not None
    _outside_evidence(outside, evidence)
    pattern = accepts.matching_pattern(outside.principal) if outside.principal else None
    evidence.automated = ev.AutomatedEvidence(outside.principal, outside.source, pattern, accepts.gates_must_pass)
    before = len(reasons)
    if not outside.principal:
        reasons.append(
            ev.Reason(
                ev.AUTOMATED_PRINCIPAL_UNKNOWN,
                "Approved outside the dashboard; who approved is not known yet (no CloudTrail call ingested).",
            )
        )
    elif pattern is None:
        reasons.append(
            ev.Reason(
                ev.AUTOMATED_PRINCIPAL_NOT_ACCEPTED,
                f"Approved outside the dashboard by {outside.principal}, which policy {policy.name!r} does not "
                "accept for automated approvals.",
            )
        )
    if accepts.gates_must_pass and not result.all_gates_pass:
        failing = "; ".join(g.reason for g in evidence.gates if g.status != "pass")
        reasons.append(ev.Reason(ev.AUTOMATED_GATES_FAILED, f"Metric gates do not pass: {failing}."))
    if result.card_check == "fail":
        reasons.append(ev.Reason(ev.CARD_NOT_APPROVED, result.card_reason))
    if result.decision == REJECTED:
        text = "; ".join(result.reasons)
        reasons.append(ev.Reason(ev.REJECTED_BY_REVIEWER, f"A current sign-off rejects it: {text}."))
    evidence.approved_via = ev.VIA_AUTOMATED if len(reasons) == before else ev.VIA_OUTSIDE
    evidence.approved_automatically = not reasons


def _outside_evidence(outside: _Outside, evidence: ev.Evidence) -> None:
    evidence.approved_via = ev.VIA_OUTSIDE
    evidence.approved_at = outside.at
    evidence.approved_by = outside.principal or outside.who
    evidence.cloudtrail_event_id = outside.event.event_id if outside.event is not None else None


def _not_by_dashboard(
    inputs: PackageInputs,
    approval: _Approval,
    outside: _Outside | None,
    evidence: ev.Evidence,
    reasons: list[ev.Reason],
) -> None:
    if outside is not None and outside.flagged is not None:
        _outside_evidence(outside, evidence)
        seen = outside.flagged.observed_at
        reasons.append(
            ev.Reason(
                ev.APPROVED_OUTSIDE,
                f"Approved outside the dashboard by {outside.who or 'an unknown principal'} (seen "
                f"{seen:%Y-%m-%d %H:%M} UTC); no sign-offs back it.",
            )
        )
        return
    if approval.decision is not None and not approval.delivered:
        state = approval.push.state if approval.push is not None else "missing"
        reasons.append(
            ev.Reason(
                ev.APPROVAL_NOT_DELIVERED, f"The dashboard's approval has not reached the registry (push {state})."
            )
        )
        return
    if inputs.package.approval_status == ApprovalStatus.APPROVED:
        if outside is not None:
            _outside_evidence(outside, evidence)
            evidence.approved_via = ev.VIA_UNKNOWN
        reasons.append(
            ev.Reason(
                ev.NOT_APPROVED_BY_DASHBOARD,
                "Approved in the registry without a decision of the dashboard (before it watched the registry, "
                "or outside it); no sign-offs back it.",
            )
        )
