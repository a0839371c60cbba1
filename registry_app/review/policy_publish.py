"""Publishing approval policies: each change of a policy's spec or scope becomes an immutable
``PolicyVersion``, and the reviews still open move to it.

Called by the ``ApprovalPolicy`` post_save receiver (``review.receivers``), wherever the row was
saved (the admin saves the model itself, ``create_demo_policies``, a shell), in the save's
transaction; who published comes from ``audit.log.audit_context``.

What moves to a new version, and what stays:

* Open reviews (a stored review state whose outcome is Pending) whose group now resolves to
  another version: their current sign-offs that the new version no longer accepts are marked
  stale (``stale_at`` and ``stale_reason``), with an audit entry per package (``signoffs.stale``):
  a sign-off in a role the new version does not require; an approval in a role whose registry
  flag changed (the flag it stood for is no longer the one the policy writes).
* Gate, SLA, card and count changes stale nothing: an approval given on content whose gates
  passed stays valid while the content is unchanged (a content change stales it anyway); the
  verdict re-evaluates gates, counts and the card on every read, so a newly failing gate blocks
  the decision and a higher count asks for more approvals.
* Decided packages (outcome not Pending) keep their sign-offs and their decision's version.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from django.db import transaction
from django.utils import timezone

from registry_app.audit import log as audit_log
from registry_app.models import ApprovalPolicy, ModelPackage, PolicyVersion, PushOutbox, ReviewState, SignOff
from registry_app.models.registry import ApprovalStatus
from registry_app.review.outbox import push_enqueue
from registry_app.review.policies import resolve_policy_row
from registry_app.review.policy import PolicyError, PolicySpec
from registry_app.review.policy_versions import (
    policy_rows,
    published_spec,
    spec_digest,
    version_diff,
    version_label,
)
from registry_app.review.queue_state import review_state_refresh
from registry_app.review.state import PENDING_OUTCOME

__all__ = ["policy_publish", "stale_reasons"]

log = logging.getLogger(__name__)


def _scope(policy: ApprovalPolicy) -> dict[str, Any]:
    return {
        "is_default": policy.is_default,
        "group_name": policy.group_name,
        "tag_key": policy.tag_key,
        "tag_value": policy.tag_value,
        "priority": policy.priority,
    }


def policy_publish(
    policy: ApprovalPolicy, *, actor: Any = None, via: str = audit_log.Via.COMMAND, correlation_id: str = ""
) -> PolicyVersion | None:
    """Publish ``policy``'s current spec and scope as its next version, unless its latest version
    already says the same (None: nothing to publish, or the spec is invalid).

    In the caller's transaction: the ``PolicyVersion`` row, the policy's ``current_version``, an
    audit entry (``policy.published``: before/after digests and the field diff), then the open
    reviews moved to it (see the module docstring). After commit: a flags push per package whose
    registry still shows a flag a staled approval wrote.
    """
    try:
        spec = published_spec(policy)
    except PolicyError:
        log.warning("approval policy %r is invalid: not published", policy.name, exc_info=True)
        return None
    digest, scope = spec_digest(spec), _scope(policy)
    with transaction.atomic():
        # Two publications of one policy take turns (the save's own UPDATE may have committed already).
        list(ApprovalPolicy.objects.select_for_update().filter(pk=policy.pk).values_list("pk", flat=True))
        latest = PolicyVersion.objects.filter(policy=policy).order_by("-number").first()
        if latest is not None and (latest.digest, latest.scope, latest.name) == (digest, scope, policy.name):
            if policy.current_version_id != latest.pk:
                ApprovalPolicy.objects.filter(pk=policy.pk).update(current_version=latest)
                policy.current_version = latest
            return None
        before = [row.current_version for row in policy_rows() if row.current_version is not None]
        user = actor if getattr(actor, "is_authenticated", False) else None
        version = PolicyVersion.objects.create(
            policy=policy,
            number=latest.number + 1 if latest is not None else 1,
            name=policy.name,
            spec=spec,
            digest=digest,
            **scope,
            published_at=timezone.now(),
            published_by=user,
        )
        ApprovalPolicy.objects.filter(pk=policy.pk).update(current_version=version)
        policy.current_version = version
        diff = version_diff(latest, version)
        audit_log.audit_append(
            "policy.published",
            actor=actor,
            via=via,
            subject=version,
            before={"version": latest.number, "digest": latest.digest} if latest is not None else None,
            after={
                "version": version.number,
                "label": version.label,
                "digest": digest,
                "diff": [{"field": f, "old": old, "new": new} for f, old, new in diff],
            },
            message=f"Approval policy {version.label} published ({len(diff)} field(s) changed)",
            correlation_id=correlation_id,
        )
        after = [v for v in before if v.policy_id != policy.pk] + [version]
        _move_open_reviews(before, after, actor=actor, via=via, correlation_id=correlation_id)
    return version


# --------------------------------------------------------------------------------------------- open reviews


def stale_reasons(old: PolicySpec, new: PolicySpec, label: str, signoffs: list[tuple[int, str, str]]) -> dict[int, str]:
    """``{sign-off id: reason}`` for the sign-offs (id, role, decision) made under ``old`` that
    ``new`` (published as ``label``) no longer accepts. Pure."""
    reasons: dict[int, str] = {}
    for pk, role, decision in signoffs:
        if role not in new.required_roles:
            reasons[pk] = f"{label} no longer requires the {role} role"
        elif decision == SignOff.Decision.APPROVE and old.flag_for(role) != new.flag_for(role):
            reasons[pk] = (
                f"{label} records {role} approvals as {new.flag_for(role)} (was {old.flag_for(role)}): approve again"
            )
    return reasons


def _move_open_reviews(
    before: list[PolicyVersion], after: list[PolicyVersion], *, actor: Any, via: str, correlation_id: str
) -> None:
    """Stale what the versions now in force no longer accept, on the open reviews they changed."""
    moved: dict[int, tuple[PolicySpec, PolicySpec, str, str]] = {}  # package -> old, new, label, fingerprint
    resolved: dict[tuple[str, str], tuple[Any, Any]] = {}
    for package_id, name, tags, fingerprint in ReviewState.objects.filter(outcome=PENDING_OUTCOME).values_list(
        "package_id", "group_name", "group_tags", "fingerprint"
    ):
        key = (name, repr(sorted(tags.items())) if isinstance(tags, dict) else "")
        if key not in resolved:
            group = _GroupLike(name, tags)
            resolved[key] = (resolve_policy_row(before, group), resolve_policy_row(after, group))
        (old_spec, old_version), (new_spec, new_version) = resolved[key]
        if (old_version and old_version.pk) != (new_version and new_version.pk):
            moved[package_id] = (old_spec, new_spec, version_label(new_version), fingerprint)
    if not moved:
        return
    current = (
        SignOff.objects.filter(package_id__in=list(moved), stale_at__isnull=True, withdrawn_at__isnull=True)
        .order_by("package_id", "pk")
        .values_list("package_id", "pk", "role", "decision", "fingerprint")
    )
    by_package: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    for package_id, pk, role, decision, fingerprint in current:
        if fingerprint == moved[package_id][3]:
            by_package[package_id].append((pk, role, decision))
    staled: dict[int, dict[int, str]] = {}
    for package_id, signoffs in by_package.items():
        old, new, label, _ = moved[package_id]
        if reasons := stale_reasons(old, new, label, signoffs):
            staled[package_id] = reasons
    if not staled:
        return
    now = timezone.now()
    by_reason: dict[str, list[int]] = defaultdict(list)
    for reasons in staled.values():
        for pk, reason in reasons.items():
            by_reason[reason].append(pk)
    for reason, ids in by_reason.items():
        SignOff.objects.filter(pk__in=ids, stale_at__isnull=True).update(stale_at=now, stale_reason=reason)
    packages = ModelPackage.objects.filter(pk__in=list(staled)).only("pk", "customer_metadata", "approval_status")
    acting = actor.get_username() if getattr(actor, "is_authenticated", False) else ""
    for package in packages.order_by("pk"):
        reasons = staled[package.pk]
        audit_log.audit_append(
            "signoffs.stale",
            actor=actor,
            via=via,
            subject=package,
            package=package,
            after={"signoff_ids": sorted(reasons), "reasons": {str(k): v for k, v in sorted(reasons.items())}},
            message=f"{len(reasons)} sign-off(s) marked stale: {'; '.join(sorted(set(reasons.values())))}",
            correlation_id=correlation_id,
        )
        old = moved[package.pk][0]
        roles = {role for pk, role, decision in by_package[package.pk] if pk in reasons and decision == "approve"}
        _withdraw_flags(package, {old.flag_for(role) for role in roles}, acting)
    review_state_refresh(list(staled))


def _withdraw_flags(package: ModelPackage, flags: set[str], acting: str) -> None:
    """A flags push removing the flags that staled approvals wrote, when the mirror shows them set."""
    metadata = package.customer_metadata if isinstance(package.customer_metadata, dict) else {}
    shown = {flag: None for flag in sorted(flags) if flag in metadata}
    if not shown or package.approval_status != ApprovalStatus.PENDING:
        return
    push = PushOutbox.objects.create(
        package=package,
        kind=PushOutbox.Kind.FLAGS,
        flags=shown,
        expected_status=ApprovalStatus.PENDING,
        acting_username=acting,
    )
    push_enqueue(push.pk)


class _GroupLike:
    """What ``resolve_policy_row`` reads of a group."""

    def __init__(self, name: str, tags: Any) -> None:
        self.name, self.tags = name, tags
