"""Periodic revalidation (issue 15): an approved version re-reviewed by the policy's roles.

Owned by the dashboard (the source of truth, like sign-offs). A ``Revalidation`` is one round of
re-review of one package version; its ``RevalidationSignOff`` rows are the roles' sign-offs on the
content current at the time (``fingerprint``; a content change marks them stale).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Revalidation(models.Model):
    class Outcome(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"

    package = models.ForeignKey("registry_app.ModelPackage", on_delete=models.PROTECT, related_name="revalidations")
    started_at = models.DateTimeField(default=timezone.now)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    due_at = models.DateTimeField(null=True, blank=True, help_text="When the revalidation was due (the clock's due_at)")
    completed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.IN_PROGRESS)
    fingerprint = models.CharField(max_length=64, blank=True, help_text="Hash of the content reviewed")
    policy_name = models.CharField(max_length=128, help_text="The policy in force (when started; when concluded)")
    policy_version = models.ForeignKey(
        "registry_app.PolicyVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The published policy version in force (when started; when concluded). Empty: built-in default",
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["package", "outcome", "completed_at"], name="revalidation_package")]
        constraints = [
            models.UniqueConstraint(
                fields=["package"], condition=models.Q(outcome="in_progress"), name="one_open_revalidation"
            )
        ]

    def __str__(self) -> str:
        return f"revalidation {self.pk} of {self.package_id}: {self.outcome}"


class RevalidationSignOff(models.Model):
    class Decision(models.TextChoices):
        APPROVE = "approve", "Approve"
        REJECT = "reject", "Reject"

    revalidation = models.ForeignKey(Revalidation, on_delete=models.PROTECT, related_name="signoffs")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="revalidation_signoffs")
    role = models.CharField(max_length=64)
    decision = models.CharField(max_length=8, choices=Decision.choices)
    comment = models.TextField(blank=True)
    fingerprint = models.CharField(max_length=64, help_text="Hash of what was reviewed")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    stale_at = models.DateTimeField(null=True, blank=True, help_text="Set when reviewed content changed")

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["revalidation", "role"], name="revalidation_signoff_role")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.role}:{self.decision}@revalidation {self.revalidation_id}"
