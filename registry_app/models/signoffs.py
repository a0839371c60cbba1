"""Governance state owned by the dashboard: policies, sign-offs, decisions, the push outbox,
notifications. Unlike the mirror, these rows are the source of truth.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class ApprovalPolicy(models.Model):
    """A stored policy (``registry_app.review.policy.PolicySpec`` as JSON) and where it applies.

    Exactly one row should be the default; others override it for a group name or a group tag.
    """

    name = models.CharField(max_length=128, unique=True)
    spec = models.JSONField(help_text="PolicySpec.to_dict(): required_roles, gates, sla_hours, role_flags, ...")
    is_default = models.BooleanField(default=False)
    group_name = models.CharField(max_length=170, blank=True, help_text="Applies to this group (exact name)")
    tag_key = models.CharField(max_length=128, blank=True, help_text="...or to groups with this tag")
    tag_value = models.CharField(max_length=256, blank=True)
    priority = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-is_default", "name"]
        verbose_name_plural = "approval policies"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=models.Q(is_default=True), name="one_default_policy"
            )
        ]

    def __str__(self) -> str:
        return self.name


class SignOff(models.Model):
    class Decision(models.TextChoices):
        APPROVE = "approve", "Approve"
        REJECT = "reject", "Reject"

    package = models.ForeignKey("registry_app.ModelPackage", on_delete=models.PROTECT, related_name="signoffs")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signoffs")
    role = models.CharField(max_length=64)
    decision = models.CharField(max_length=8, choices=Decision.choices)
    comment = models.TextField(blank=True)
    fingerprint = models.CharField(max_length=64, help_text="Hash of what was reviewed")
    fingerprint_detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    stale_at = models.DateTimeField(null=True, blank=True, help_text="Set when reviewed content changed")

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["package", "role"]), models.Index(fields=["user", "package"])]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.role}:{self.decision}@{self.package_id}"


class Decision(models.Model):
    """A governance decision the dashboard made (and must push to SageMaker)."""

    class Kind(models.TextChoices):
        POLICY = "policy", "Sign-off policy satisfied"
        REJECTION = "rejection", "Rejected by a reviewer"
        REVOCATION = "revocation", "Approval revoked"
        ARCHIVE = "archive", "Group archived"

    package = models.ForeignKey("registry_app.ModelPackage", on_delete=models.PROTECT, related_name="decisions")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=32, help_text="Target ModelApprovalStatus")
    description = models.TextField(blank=True, help_text="ApprovalDescription sent")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # "Recently decided": newest first, a page at a time (keyset on both columns).
        indexes = [models.Index(fields=["-created_at", "-id"], name="decision_recent")]

    def __str__(self) -> str:
        return f"{self.package_id}:{self.status}"


class PushOutbox(models.Model):
    """One intended UpdateModelPackage, written in the same transaction as what caused it."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        CONFLICT = "conflict", "Conflict"

    class Kind(models.TextChoices):
        FLAGS = "flags", "Sign-off flag"
        DECISION = "decision", "Decision"

    # A claim may start from these; these are still on their way to the registry.
    CLAIMABLE_STATES = (State.PENDING, State.FAILED)
    ACTIVE_STATES = (State.PENDING, State.SENDING)
    # A decision whose push has not (yet) reached the registry still decides the package.
    UNDELIVERED_STATES = (State.PENDING, State.SENDING, State.FAILED)
    # Staff may retry these.
    RETRYABLE_STATES = (State.FAILED, State.CONFLICT)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)  # also the ClientToken
    package = models.ForeignKey("registry_app.ModelPackage", on_delete=models.PROTECT, related_name="pushes")
    decision = models.ForeignKey(Decision, null=True, blank=True, on_delete=models.PROTECT, related_name="pushes")
    signoff = models.ForeignKey(SignOff, null=True, blank=True, on_delete=models.PROTECT, related_name="pushes")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    target_status = models.CharField(max_length=32, blank=True, help_text="Empty: keep the current status")
    target_description = models.TextField(blank=True)
    flags = models.JSONField(default=dict, blank=True, help_text="CustomerMetadataProperties to set")
    expected_status = models.CharField(
        max_length=32, help_text="The registry status when the review began; anything else is a conflict"
    )
    acting_username = models.CharField(max_length=150, blank=True, help_text="SourceIdentity for AssumeRole")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    conflict_detail = models.JSONField(default=dict, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["state", "created_at"])]

    def __str__(self) -> str:
        return f"push {self.id} {self.kind} {self.state}"


class GroupWatcher(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="watching")
    group = models.ForeignKey("registry_app.ModelPackageGroup", on_delete=models.CASCADE, related_name="watchers")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "group"], name="uniq_watch")]

    def __str__(self) -> str:
        return f"{self.user_id} watches {self.group_id}"


class NotificationKind(models.TextChoices):
    REVIEW_REQUESTED = "review_requested", "A package needs my review"
    SLA_REMINDER = "sla_reminder", "Review SLA passed"
    DECIDED = "decided", "A package I signed or watch was decided"
    CONFLICT = "conflict", "A push conflicted with a change made elsewhere"


class NotificationPreference(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_prefs")
    opted_out = models.JSONField(default=list, blank=True, help_text="NotificationKind values not wanted")

    def __str__(self) -> str:
        return f"preferences of {self.user_id}"

    def wants(self, kind: str) -> bool:
        return kind not in (self.opted_out or [])


class Notification(models.Model):
    """Idempotency log: one email per (package, kind, recipient, key)."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    package = models.ForeignKey("registry_app.ModelPackage", on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    key = models.CharField(max_length=64, blank=True, help_text="Distinguishes repeated kinds, e.g. a decision id")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["package", "kind", "recipient", "key"], name="uniq_notification")
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.recipient_id} about {self.package_id}: {self.state}"
