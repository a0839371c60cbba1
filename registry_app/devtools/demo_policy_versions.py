"""Demo: a policy with two published versions (``manage.py stage_demo_scenes`` runs it after the scenes).

The scenes decide under the ``default`` policy's v1 (demand-forecast v4 approved, churn-propensity v1
revoked); then the ML lead approves support-ticket-router's pending version, and the demo admin edits the
default policy's review SLA (72 h -> 96 h), which publishes ``default v2``. The pending reviews of the
default policy's groups are now under v2 (the review page shows "signed under default v1" next to the ML
lead's approval); the decisions keep v1 ("approved under default v1"). An SLA change stales no sign-off.

Idempotent: nothing happens once the default policy has a second version.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model

from registry_app.audit.log import audit_context
from registry_app.models import ApprovalPolicy, AuditLogEntry, ModelPackage
from registry_app.models.registry import ApprovalStatus
from registry_app.review.policy import SignOffNotAllowed
from registry_app.review.signoffs import signoff_create

__all__ = ["DEMO_POLICY", "DEMO_SLA_HOURS", "SIGNED_UNDER_V1", "stage_policy_versions"]

DEMO_POLICY = "default"
DEMO_SLA_HOURS = 96
SIGNED_UNDER_V1 = ("support-ticket-router", "mlead", "ml-lead")  # group, user, role


def stage_policy_versions() -> str:
    """Publish ``default v2`` as the demo admin (after an approval under v1); "" when already done."""
    policy = ApprovalPolicy.objects.filter(name=DEMO_POLICY).first()
    users = get_user_model().objects
    admin = users.filter(username="admin").first()
    if policy is None or policy.versions.count() >= 2:
        return ""
    group, username, role = SIGNED_UNDER_V1
    package = (
        ModelPackage.objects.filter(group__name=group, approval_status=ApprovalStatus.PENDING, deleted_at__isnull=True)
        .order_by("-version")
        .first()
    )
    signer = users.filter(username=username).first()
    signed = ""
    if package is not None and signer is not None:
        try:
            signoff_create(
                user=signer, package_id=package.pk, role=role, decision="approve", comment="Offline metrics reviewed."
            )
            signed = f"; {username} approved {group} v{package.version} under v1"
        except SignOffNotAllowed:
            pass
    with audit_context(actor=admin, via=AuditLogEntry.Via.COMMAND):
        policy.spec = {**policy.spec, "sla_hours": DEMO_SLA_HOURS}
        policy.save()
    policy.refresh_from_db()
    label = policy.current_version.label if policy.current_version else DEMO_POLICY
    return f"policy {label} published by {admin.get_username() if admin else 'the system'} (SLA 96 h){signed}"
