"""Writing findings: raise, move to remediation, close with evidence, accept as a risk; and the
conditions of an approve-with-conditions sign-off.

Each service is one transaction: it locks the finding (or, to raise one, the package) row, checks
who may act under that lock (``finding_list``: reviewers of the package's policy or staff raise;
the owner, the raiser or compliance move to remediation and close; compliance alone accepts a
risk), writes the row, appends the audit entry (``finding.raised`` / ``finding.remediation`` /
``finding.closed`` / ``finding.risk_accepted``) and refreshes the stored review state of the
group's versions the finding applies to (a blocking finding changes their verdict). A raised
finding's owner is told through the notification outbox, in the same transaction.
Every refusal raises ``FindingNotAllowed`` (a ``SignOffNotAllowed``: the views turn it into 400/403).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import transaction
from django.utils import timezone

from registry_app.audit import log as audit_log
from registry_app.models import Finding, ModelPackage, PolicyVersion, SignOff
from registry_app.models.findings import evidence_url_validator
from registry_app.permissions import is_active_user, user_roles
from registry_app.review.finding_list import can_accept_risk, can_act, can_raise
from registry_app.review.policy import PolicySpec, SignOffNotAllowed
from registry_app.review.policy_versions import policy_and_version, version_label
from registry_app.review.queue_state import review_state_refresh
from registry_app.review.review_rows import under_review

__all__ = [
    "MAX_TEXT",
    "ConditionInput",
    "FindingNotAllowed",
    "conditions_attach",
    "finding_accept_risk",
    "finding_close",
    "finding_raise",
    "finding_remediate",
]

MAX_TEXT = 4000
MAX_CONDITIONS = 10
# Severities a condition of an approval may have while it blocks nothing but itself.
CONDITION_SEVERITIES = (Finding.Severity.LOW, Finding.Severity.MEDIUM)


class FindingNotAllowed(SignOffNotAllowed):
    """A finding action is refused; ``code`` says why (``forbidden`` -> 403, the others 400)."""


@dataclass(frozen=True)
class ConditionInput:
    """A new finding to create as a condition of an approval (``blocks_approval`` False: a condition
    never blocks the approval it is part of; high and critical need it said explicitly)."""

    title: str
    severity: str
    due_date: dt.date | None = None
    owner_id: int | None = None
    owner_email: str = ""
    description: str = ""
    blocks_approval: bool = False


# --------------------------------------------------------------------------------------------- checks


def _text(value: str, what: str, *, required: bool, limit: int = MAX_TEXT) -> str:
    value = (value or "").strip()
    if required and not value:
        raise FindingNotAllowed(f"{what} is required.", code="invalid")
    if len(value) > limit:
        raise FindingNotAllowed(f"{what} is {len(value)} characters long; keep it under {limit}.", code="invalid")
    return value


def _owner(owner_id: int | None, owner_email: str) -> tuple[Any, str]:
    email = (owner_email or "").strip()
    if email:
        try:
            EmailValidator()(email)
        except ValidationError as exc:
            raise FindingNotAllowed(f"{email[:80]!r} is not an e-mail address.", code="invalid") from exc
    owner = None
    if owner_id is not None:
        owner = get_user_model().objects.filter(pk=owner_id, is_active=True).first()
        if owner is None:
            raise FindingNotAllowed("The owner must be an active user.", code="invalid")
    if owner is None and not email:
        raise FindingNotAllowed("A finding needs an owner: a person, a team e-mail address, or both.", code="invalid")
    return owner, email


def _check_fields(title: str, severity: str, due_date: dt.date | None) -> str:
    title = _text(title, "A title", required=True, limit=200)
    if severity not in Finding.Severity.values:
        raise FindingNotAllowed(
            f"Unknown severity {str(severity)[:20]!r}: one of {', '.join(Finding.Severity.values)}.", code="invalid"
        )
    if due_date is not None and due_date < timezone.localdate():
        raise FindingNotAllowed("The due date is in the past.", code="invalid")
    return title


def _lock_finding(finding_id: int) -> Finding:
    try:
        return Finding.objects.select_for_update().select_related("package__group").get(pk=finding_id)
    except (Finding.DoesNotExist, ValueError, TypeError) as exc:
        raise FindingNotAllowed("There is no such finding.", code="not_found") from exc


def _still_open(finding: Finding) -> None:
    if not finding.is_open:
        raise FindingNotAllowed(
            f"Finding {finding.ref} is already {finding.get_state_display().lower()}.", code="already_done"
        )


def _refresh(finding: Finding) -> None:
    """The stored review state of the versions the finding applies to (this one and later ones)."""
    ids = ModelPackage.objects.filter(group_id=finding.group_id, version__gte=finding.package.version).filter(
        under_review()
    )
    review_state_refresh(list(ids.values_list("pk", flat=True)))


def _snapshot(finding: Finding) -> dict[str, Any]:
    return {
        "ref": finding.ref,
        "state": finding.state,
        "severity": finding.severity,
        "blocks_approval": finding.blocks_approval,
        "title": finding.title,
        "owner": finding.owner.get_username() if finding.owner_id else "",
        "owner_email": finding.owner_email,
        "due_date": finding.due_date.isoformat() if finding.due_date else None,
    }


# --------------------------------------------------------------------------------------------- raise


def _create(
    *,
    user: Any,
    package: ModelPackage,
    policy: PolicySpec,
    title: str,
    description: str,
    severity: str,
    owner_id: int | None,
    owner_email: str,
    due_date: dt.date | None,
    blocks_approval: bool | None,
    version: PolicyVersion | None,
    signoff: SignOff | None = None,
) -> Finding:
    """Create one finding in the caller's transaction (the package locked), audit it, tell its owner."""
    title = _check_fields(title, severity, due_date)
    description = _text(description, "The description", required=False)
    owner, email = _owner(owner_id, owner_email)
    blocks = severity in policy.finding_blocking_severities if blocks_approval is None else bool(blocks_approval)
    finding = Finding.objects.create(
        package=package,
        group_id=package.group_id,
        title=title,
        description=description,
        severity=severity,
        owner=owner,
        owner_email=email,
        due_date=due_date,
        blocks_approval=blocks,
        raised_by=user,
        signoff=signoff,
        policy_version=version,
    )
    audit_log.audit_append(
        "finding.raised",
        actor=user,
        via=audit_log.Via.WEB,
        subject=finding,
        package=package.pk,
        after=_snapshot(finding)
        | {"policy_version": version_label(version)}
        | ({"signoff": signoff.pk} if signoff is not None else {}),
        message=f"{user.get_username()} raised {finding.ref} ({severity}) on v{package.version}: {title}",
    )
    from registry_app.notifications.enqueue import enqueue_finding_raised

    enqueue_finding_raised(finding.pk)
    return finding


def finding_raise(
    *,
    user: Any,
    package_id: int,
    title: str,
    severity: str,
    description: str = "",
    owner_id: int | None = None,
    owner_email: str = "",
    due_date: dt.date | None = None,
    blocks_approval: bool | None = None,
) -> Finding:
    """Raise a finding on a package version (any reviewer role of its policy, or staff).

    ``blocks_approval`` None: the policy's ``finding_blocking_severities`` decide. One transaction
    under the package row lock: the finding, ``finding.raised``, the owner's e-mail row, the review
    state of the versions it applies to."""
    if not is_active_user(user):
        raise FindingNotAllowed("Sign in with an active account to raise a finding.", code="not_authenticated")
    with transaction.atomic():
        try:
            package = ModelPackage.objects.select_for_update().select_related("group").get(pk=package_id)
        except (ModelPackage.DoesNotExist, ValueError, TypeError) as exc:
            raise FindingNotAllowed("There is no such model package.", code="not_found") from exc
        policy, version = policy_and_version(package.group)
        if not can_raise(user, policy):
            raise FindingNotAllowed(
                f"Only reviewers of policy {policy.name!r} ({', '.join(policy.required_roles)}) or staff may "
                "raise findings.",
                code="forbidden",
            )
        if package.deleted_at is not None:
            raise FindingNotAllowed("This version was deleted from the registry.", code="deleted")
        finding = _create(
            user=user,
            package=package,
            policy=policy,
            title=title,
            description=description,
            severity=severity,
            owner_id=owner_id,
            owner_email=owner_email,
            due_date=due_date,
            blocks_approval=blocks_approval,
            version=version,
        )
        _refresh(finding)
    return finding


def conditions_attach(
    *,
    user: Any,
    package: ModelPackage,
    policy: PolicySpec,
    signoff: SignOff,
    new: Sequence[ConditionInput],
    refs: Sequence[int],
) -> list[Finding]:
    """The conditions of an approve sign-off (caller's transaction, package locked): create ``new``
    findings linked to it (``Finding.signoff``) and link the open findings ``refs`` applying to the
    package. Every condition becomes one of ``signoff.conditions``."""
    if len(new) + len(refs) > MAX_CONDITIONS:
        raise FindingNotAllowed(f"At most {MAX_CONDITIONS} conditions per approval.", code="invalid")
    linked: list[Finding] = []
    for item in new:
        if item.blocks_approval:
            raise FindingNotAllowed(
                "A condition of an approval cannot block that approval: raise a blocking finding instead.",
                code="invalid",
            )
        linked.append(
            _create(
                user=user,
                package=package,
                policy=policy,
                title=item.title,
                description=item.description,
                severity=item.severity,
                owner_id=item.owner_id,
                owner_email=item.owner_email,
                due_date=item.due_date,
                blocks_approval=False,
                version=signoff.policy_version,  # the version the approval was signed under
                signoff=signoff,
            )
        )
    if refs:
        found = {
            f.pk: f
            for f in Finding.objects.filter(
                pk__in=list(refs), group_id=package.group_id, package__version__lte=package.version
            ).select_related("package")
        }
        for pk in refs:
            finding = found.get(pk)
            if finding is None or not finding.is_open:
                raise FindingNotAllowed(f"F-{pk} is not an open finding of this version.", code="invalid")
            linked.append(finding)
    signoff.conditions.add(*linked)
    return linked


# --------------------------------------------------------------------------------------------- transitions


def _transition(*, user: Any, finding_id: int, action: str, check: Any, apply: Any, message: str) -> Finding:
    if not is_active_user(user):
        raise FindingNotAllowed("Sign in with an active account.", code="not_authenticated")
    with transaction.atomic():
        finding = _lock_finding(finding_id)
        _still_open(finding)
        check(finding, user_roles(user))
        before = _snapshot(finding)
        apply(finding)
        finding.save()
        after = _snapshot(finding) | {
            k: v
            for k, v in (
                ("closing_comment", finding.closing_comment),
                ("evidence_url", finding.evidence_url),
                ("risk_justification", finding.risk_justification),
            )
            if v
        }
        audit_log.audit_append(
            action,
            actor=user,
            via=audit_log.Via.WEB,
            subject=finding,
            package=finding.package_id,
            before=before,
            after=after,
            message=f"{user.get_username()} {message} {finding.ref}: {finding.title}",
        )
        _refresh(finding)
    return finding


def _may_act(user: Any) -> Any:
    def check(finding: Finding, held: set[str]) -> None:
        if not can_act(finding, user, held):
            raise FindingNotAllowed(
                "Only the finding's owner, the person who raised it or compliance may do this.", code="forbidden"
            )

    return check


def finding_remediate(*, user: Any, finding_id: int) -> Finding:
    """open -> in_remediation (owner, raiser or compliance); ``finding.remediation``."""

    def apply(finding: Finding) -> None:
        if finding.state != Finding.State.OPEN:
            raise FindingNotAllowed(f"Finding {finding.ref} is already in remediation.", code="already_done")
        finding.state = Finding.State.IN_REMEDIATION

    return _transition(
        user=user,
        finding_id=finding_id,
        action="finding.remediation",
        check=_may_act(user),
        apply=apply,
        message="moved to remediation",
    )


def finding_close(*, user: Any, finding_id: int, comment: str, evidence_url: str) -> Finding:
    """open / in_remediation -> closed, with a closing comment and an http(s) evidence link (owner,
    raiser or compliance); ``finding.closed``."""
    comment = _text(comment, "A closing comment", required=True)
    url = (evidence_url or "").strip()
    try:
        evidence_url_validator(url)
    except ValidationError as exc:
        raise FindingNotAllowed("The evidence link must be an http:// or https:// URL.", code="invalid") from exc
    if len(url) > 2000:
        raise FindingNotAllowed("The evidence link is longer than 2,000 characters.", code="invalid")

    def apply(finding: Finding) -> None:
        finding.state = Finding.State.CLOSED
        finding.closing_comment, finding.evidence_url = comment, url
        finding.closed_by, finding.closed_at = user, timezone.now()

    return _transition(
        user=user, finding_id=finding_id, action="finding.closed", check=_may_act(user), apply=apply, message="closed"
    )


def finding_accept_risk(*, user: Any, finding_id: int, justification: str) -> Finding:
    """open / in_remediation -> accepted_risk, with a justification (compliance only); ``finding.risk_accepted``."""
    justification = _text(justification, "A justification", required=True)

    def check(finding: Finding, held: set[str]) -> None:
        if not can_accept_risk(user, held):
            raise FindingNotAllowed("Only compliance may accept a finding as a risk.", code="forbidden")

    def apply(finding: Finding) -> None:
        finding.state = Finding.State.ACCEPTED_RISK
        finding.risk_justification = justification
        finding.closed_by, finding.closed_at = user, timezone.now()

    return _transition(
        user=user,
        finding_id=finding_id,
        action="finding.risk_accepted",
        check=check,
        apply=apply,
        message="accepted as a risk",
    )
