"""Stored review state: one row per package under review, what the queue shows and filters on.

Derived, never edited by hand: ``registry_app.review.queue_state`` writes these rows from
``review.state.verdict`` inside the transaction of whatever changed an input (a sign-off, a push,
the sync, a policy edit), and the nightly check re-derives every row and records any difference.
The queue pages read nothing else.
"""

from __future__ import annotations

from django.db import models


class ReviewState(models.Model):
    """A live package pending in the registry (decided by the dashboard or not): its review verdict.

    ``queue_key`` orders the queue (oldest first: CreationTime, undated packages last, then first
    seen, then id) and is the keyset cursor. ``registrants`` and ``signers`` are delimited lists
    the queue matches against the person asking (``\\nname\\n`` and ``|id|``), so the "mine" tab
    needs no row per user.
    """

    package = models.OneToOneField(
        "registry_app.ModelPackage", primary_key=True, on_delete=models.CASCADE, related_name="review_state"
    )
    group = models.ForeignKey("registry_app.ModelPackageGroup", on_delete=models.CASCADE, related_name="+")
    source_name = models.CharField(max_length=64)
    group_name = models.CharField(max_length=170)
    group_tags = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField()
    created_at = models.DateTimeField(null=True, blank=True, help_text="SageMaker CreationTime")
    waiting_since = models.DateTimeField(help_text="CreationTime, else when the mirror first saw it")
    queue_key = models.CharField(max_length=64, unique=True)
    registrants = models.TextField(blank=True, help_text="Casefolded CreatedBy names, each between newlines")
    policy_name = models.CharField(max_length=128)
    policy_digest = models.CharField(max_length=64)
    sla_hours = models.PositiveIntegerField()
    due_soon_at = models.DateTimeField()
    due_at = models.DateTimeField()
    fingerprint = models.CharField(max_length=64, help_text="Reviewed content the current sign-offs are valid for")
    status = models.CharField(max_length=32, help_text="Effective status: a decision on its way counts")
    outcome = models.CharField(max_length=32, help_text="Pending, or what is decided: Approved / Rejected")
    missing_roles = models.JSONField(default=list, blank=True)
    signers = models.TextField(blank=True, help_text="Ids of users with a current sign-off, each between bars")
    blocked_by = models.CharField(
        max_length=255, blank=True, default="", help_text="Failing gates that block approval ('auc 0.842 < 0.85')"
    )
    push_state = models.CharField(
        max_length=16, blank=True, default="", help_text="'conflict' when the newest decision push conflicted"
    )
    computed_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["group_name", "queue_key"], name="review_state_group")]

    def __str__(self) -> str:
        return f"review state of {self.package_id}: {self.outcome}"


class ReviewStateRole(models.Model):
    """One required role of a package under review: approvals needed and current, and whether
    someone holding the role may still sign (the nav counts are a GROUP BY over these rows)."""

    # Deleted explicitly with their state (``review.queue_state``): DO_NOTHING lets a state row go
    # in one DELETE, without Django first reading what cascades.
    state = models.ForeignKey(ReviewState, on_delete=models.DO_NOTHING, related_name="role_rows")
    role = models.CharField(max_length=64)
    needed = models.PositiveIntegerField()
    approvals = models.PositiveIntegerField()
    missing = models.BooleanField(help_text="Approvals still missing while the outcome is Pending")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["state", "role"], name="uniq_review_state_role")]
        indexes = [models.Index(fields=["role", "missing"], name="review_state_role_missing")]

    def __str__(self) -> str:
        return f"{self.state_id}:{self.role} {self.approvals}/{self.needed}"


class ReviewStateCheck(models.Model):
    """One re-derivation of every stored row (nightly): how many differed, and which."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    checked = models.PositiveIntegerField(default=0, help_text="Packages under review, stored or derived")
    differences = models.PositiveIntegerField(default=0, help_text="Rows missing, extra or different (fixed)")
    detail = models.JSONField(default=list, blank=True, help_text="The first differences: package, kind, fields")

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"review state check {self.started_at:%Y-%m-%d %H:%M}: {self.differences} difference(s)"
