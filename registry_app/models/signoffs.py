"""Governance state owned by the dashboard: policies, sign-offs, decisions, the push outbox,
notifications. Unlike the mirror, these rows are the source of truth.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


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
    current_version = models.ForeignKey(
        "registry_app.PolicyVersion",
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The latest published version (set by review.policy_publish)",
    )

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
    withdrawn_at = models.DateTimeField(null=True, blank=True, help_text="Set when the signer withdrew it")
    stale_reason = models.TextField(blank=True, help_text="Why it went stale, when not a content change")
    policy_version = models.ForeignKey(
        "registry_app.PolicyVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="signoffs"
    )

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
    policy_version = models.ForeignKey(
        "registry_app.PolicyVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="decisions"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        # "Recently decided": newest first, a page at a time (keyset on both columns).
        indexes = [models.Index(fields=["-created_at", "-id"], name="decision_recent")]

    def __str__(self) -> str:
        return f"{self.package_id}:{self.status}"


class PolicyException(models.Model):
    """A compliance officer's justified exception to the failing gates of one reviewed content.

    Valid for the fingerprint it was recorded on (a content change voids it, as it voids
    sign-offs); while valid, the gates it lists no longer block approvals, and the deciding
    approval's description says so.
    """

    package = models.ForeignKey("registry_app.ModelPackage", on_delete=models.PROTECT, related_name="exceptions")
    fingerprint = models.CharField(max_length=64)
    gates = models.JSONField(default=list, blank=True, help_text="The failing gates waived, as 'auc 0.842 < 0.85'")
    justification = models.TextField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["package", "fingerprint"], name="policy_exception_package")]

    def __str__(self) -> str:
        return f"exception on {self.package_id} by {self.recorded_by_id}"


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
    """What happened. E-mail preferences are per kind (``EMAIL_KINDS``); webhooks subscribe to kinds."""

    REVIEW_REQUESTED = "review_requested", "A package needs my review"
    SLA_REMINDER = "sla_reminder", "Review SLA passed"
    DECIDED = "decided", "A package I signed or watch was decided"
    REVOKED = "revoked", "An approval I signed or watch was revoked"
    CONFLICT = "conflict", "A push conflicted with a change made elsewhere"
    # Emitted by the findings / revalidation feature (to come): the outbox and the webhooks know them already.
    FINDING_RAISED = "finding_raised", "A finding was raised on a package I review or watch"
    REVALIDATION_DUE = "revalidation_due", "A package I review or watch is due for revalidation"


# The kinds that are e-mailed today (each has templates in registry_app/email/): the profile page's choices.
EMAIL_KINDS: tuple[str, ...] = (
    NotificationKind.REVIEW_REQUESTED,
    NotificationKind.SLA_REMINDER,
    NotificationKind.DECIDED,
    NotificationKind.REVOKED,
    NotificationKind.CONFLICT,
    NotificationKind.REVALIDATION_DUE,
    NotificationKind.FINDING_RAISED,
)


class NotificationPreference(models.Model):
    """Per kind: immediately (the default), in the daily digest (``daily``), or not at all (``opted_out``)."""

    class Mode(models.TextChoices):
        IMMEDIATE = "immediate", "Immediately"
        DAILY = "daily", "In a daily digest"
        OFF = "off", "Never"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_prefs")
    opted_out = models.JSONField(default=list, blank=True, help_text="NotificationKind values not wanted")
    daily = models.JSONField(default=list, blank=True, help_text="NotificationKind values sent in the daily digest")

    def __str__(self) -> str:
        return f"preferences of {self.user_id}"

    def wants(self, kind: str) -> bool:
        return kind not in (self.opted_out or [])

    def mode(self, kind: str) -> str:
        if not self.wants(kind):
            return self.Mode.OFF
        return self.Mode.DAILY if kind in (self.daily or []) else self.Mode.IMMEDIATE


class Notification(models.Model):
    """The notification outbox: one row per message to deliver, written in the transaction of the event
    that causes it (registry_app.notifications.outbox), sent by a worker and retried by the beat sweep.

    A row goes either to a person by e-mail (``recipient``) or to a chat / webhook endpoint (``webhook``):
    one row per (package, kind, recipient or webhook, key), so an event is never told twice. Rows due
    together for one person (or one Slack / Teams endpoint) go out as one message, a digest.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"  # waiting for deliver_after, or retrying after an error (last_error)
        SENDING = "sending", "Sending"  # claimed by a worker; re-claimable once the lease has expired
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"  # gave up: too many attempts, or refused for good (staff may retry)
        CANCELLED = "cancelled", "Not sent"  # no longer relevant when its turn came (see last_error)

    CLAIMABLE_STATES = (State.PENDING, State.SENDING)  # SENDING only with an expired lease

    package = models.ForeignKey("registry_app.ModelPackage", on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    webhook = models.ForeignKey(
        "registry_app.WebhookEndpoint", null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    key = models.CharField(max_length=64, blank=True, help_text="Distinguishes repeated kinds, e.g. a decision id")
    payload = models.JSONField(default=dict, blank=True, help_text="The event's facts when it happened")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    digest = models.BooleanField(default=False, help_text="Waits for the recipient's daily digest")
    deliver_after = models.DateTimeField(default=timezone.now, help_text="Not sent before (batching, digest, backoff)")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    claim = models.CharField(max_length=32, blank=True, db_index=True, help_text="The sending worker's batch")
    claimed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, help_text="When the event happened")
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["package", "kind", "recipient", "key"], name="uniq_notification"),
            models.UniqueConstraint(fields=["package", "kind", "webhook", "key"], name="uniq_webhook_notification"),
            models.CheckConstraint(
                condition=models.Q(recipient__isnull=False, webhook__isnull=True)
                | models.Q(recipient__isnull=True, webhook__isnull=False),
                name="notification_one_target",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "deliver_after"], name="notification_due_idx"),
            models.Index(fields=["recipient", "state"], name="notification_recipient_idx"),
        ]

    def __str__(self) -> str:
        target = f"user {self.recipient_id}" if self.recipient_id else f"webhook {self.webhook_id}"
        return f"{self.kind} to {target} about {self.package_id}: {self.state}"
