"""Signal receivers of the audit log, connected by ``RegistryAppConfig.ready()`` (``connect_receivers``).

* The append-only guards: ``pre_save`` refuses to save an existing ``AuditLogEntry`` and
  ``pre_delete`` refuses every delete (``Model.delete()`` and ``QuerySet.delete()``, which sends
  ``pre_delete`` per row when a receiver exists).
* The few audit entries that come from Django signals (login, role membership, approval policy
  edits), which the brief allows because they happen in web or command context; who acted comes
  from ``log.audit_context``.

Connected at start-up rather than by whichever module happens to import this one, so the guards
hold in every process (web, worker, shell, command) whatever it imported.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save

from registry_app.audit.chain import clean_text, jsonable
from registry_app.audit.log import REPR_LIMIT, AuditLogImmutable, audit_append, current_audit_context
from registry_app.models import ApprovalPolicy, AuditLogEntry

__all__ = ["connect_receivers"]

Via = AuditLogEntry.Via


def connect_receivers() -> None:
    """Connect every receiver below (idempotent: each has a ``dispatch_uid``)."""
    pre_save.connect(_refuse_update, sender=AuditLogEntry, dispatch_uid="audit_refuse_update")
    pre_delete.connect(_refuse_delete, sender=AuditLogEntry, dispatch_uid="audit_refuse_delete")
    user_logged_in.connect(_on_login, dispatch_uid="audit_login")
    m2m_changed.connect(_on_roles_changed, sender=get_user_model().groups.through, dispatch_uid="audit_roles")
    pre_save.connect(_policy_before, sender=ApprovalPolicy, dispatch_uid="audit_policy_before")
    post_save.connect(_policy_saved, sender=ApprovalPolicy, dispatch_uid="audit_policy_saved")
    post_delete.connect(_policy_deleted, sender=ApprovalPolicy, dispatch_uid="audit_policy_deleted")


# --------------------------------------------------------------------------------------------- guards


def _refuse_update(sender: type[AuditLogEntry], instance: AuditLogEntry, raw: bool = False, **_: Any) -> None:
    if raw:  # loaddata of a backup: rows arrive as they were
        return
    if not instance._state.adding:
        raise AuditLogImmutable(f"audit log entry #{instance.seq} is append-only and cannot be changed")


def _refuse_delete(sender: type[AuditLogEntry], instance: AuditLogEntry, **_: Any) -> None:
    raise AuditLogImmutable(f"audit log entry #{instance.seq} is append-only and cannot be deleted")


# --------------------------------------------------------------------------------------------- signal-written entries


def _request_correlation_id(request: Any) -> str:
    meta = getattr(request, "META", {}) or {}
    return str(meta.get("HTTP_X_REQUEST_ID") or meta.get("HTTP_X_AMZN_TRACE_ID") or "")[:64]


def _on_login(sender: Any, request: Any, user: Any, **_: Any) -> None:
    meta = getattr(request, "META", {}) or {}
    audit_append(
        "login",
        actor=user,
        via=Via.WEB,
        subject=user,
        after={"remote_addr": str(meta.get("REMOTE_ADDR") or "")},
        message=f"{user.get_username()} signed in",
        correlation_id=_request_correlation_id(request),
    )


def _role_entries(user: Any, group_names: list[str], *, granted: bool) -> None:
    ctx = current_audit_context()
    verb = "granted" if granted else "revoked"
    for name in sorted(group_names):
        audit_append(
            f"role.{verb}",
            actor=ctx.actor,
            via=ctx.via,
            subject=user,
            before=None if granted else {"role": name},
            after={"role": name} if granted else None,
            message=f"Role {name} {verb} {'to' if granted else 'from'} {user.get_username()}",
            correlation_id=ctx.correlation_id,
        )


def _on_roles_changed(
    sender: Any, instance: Any, action: str, reverse: bool, model: Any, pk_set: set[Any] | None, **_: Any
) -> None:
    """User.groups changes (grant_role, the admin, group.user_set): one entry per user and role."""
    user_model = get_user_model()
    if action == "pre_clear":
        # After the clear the memberships are gone; remember them now.
        if reverse:
            instance._audit_cleared = list(instance.user_set.all())
        else:
            instance._audit_cleared = list(instance.groups.values_list("name", flat=True))
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    granted = action == "post_add"
    if action == "post_clear":
        cleared = getattr(instance, "_audit_cleared", [])
        if reverse:
            for user in cleared:
                _role_entries(user, [instance.name], granted=False)
        else:
            _role_entries(instance, list(cleared), granted=False)
        return
    if not pk_set:
        return
    if reverse:  # group.user_set.add(users): instance is the group
        for user in user_model.objects.filter(pk__in=pk_set).order_by("pk"):
            _role_entries(user, [instance.name], granted=granted)
    else:
        names = list(Group.objects.filter(pk__in=pk_set).values_list("name", flat=True))
        _role_entries(instance, names, granted=granted)


_POLICY_FIELDS = ("name", "spec", "is_default", "group_name", "tag_key", "tag_value", "priority")


def _policy_snapshot(policy: ApprovalPolicy) -> dict[str, Any]:
    return {name: getattr(policy, name) for name in _POLICY_FIELDS}


def _policy_before(sender: Any, instance: ApprovalPolicy, raw: bool = False, **_: Any) -> None:
    if raw or instance.pk is None:
        instance._audit_before = None
        return
    previous = ApprovalPolicy.objects.filter(pk=instance.pk).first()
    instance._audit_before = _policy_snapshot(previous) if previous else None


def _policy_saved(sender: Any, instance: ApprovalPolicy, created: bool, raw: bool = False, **_: Any) -> None:
    if raw:
        return
    before = getattr(instance, "_audit_before", None)
    after = _policy_snapshot(instance)
    if not created and jsonable(before) == jsonable(after):
        return
    ctx = current_audit_context()
    audit_append(
        "policy.created" if created else "policy.changed",
        actor=ctx.actor,
        via=ctx.via,
        subject=instance,
        before=before,
        after=after,
        message=f"Approval policy {instance.name} {'created' if created else 'changed'}",
        correlation_id=ctx.correlation_id,
    )


def _policy_deleted(sender: Any, instance: ApprovalPolicy, **_: Any) -> None:
    ctx = current_audit_context()
    audit_append(
        "policy.deleted",
        actor=ctx.actor,
        via=ctx.via,
        subject=("approvalpolicy", str(instance.pk), clean_text(instance, REPR_LIMIT)),
        before=_policy_snapshot(instance),
        message=f"Approval policy {instance.name} deleted",
        correlation_id=ctx.correlation_id,
    )
