"""Findings: issues a reviewer records on a package version, with an owner, a due date and a state.

A finding is raised on one version (``package``) and belongs to its group (``group``): while open
(``open`` or ``in_remediation``) it applies to that version and to every later version of the group
("carried over"), until it is closed with evidence or accepted as a risk by compliance. An open
finding with ``blocks_approval`` blocks approval like a failing gate (``review.state.verdict``).
A finding created by an approve-with-conditions sign-off points at it (``signoff``); a sign-off's
conditions are the findings it created or referenced (``condition_of``).
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import URLValidator
from django.db import models
from django.utils import timezone

# Evidence links: http and https only (never javascript:, data:, file:).
evidence_url_validator = URLValidator(schemes=["http", "https"])


class Finding(models.Model):
    class Severity(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"
        CRITICAL = "critical", "Critical"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        IN_REMEDIATION = "in_remediation", "In remediation"
        CLOSED = "closed", "Closed"
        ACCEPTED_RISK = "accepted_risk", "Accepted as risk"

    # Still to be dealt with: these carry over to later versions and may block approval.
    OPEN_STATES = (State.OPEN, State.IN_REMEDIATION)
    SEVERITY_RANK = {Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3, Severity.CRITICAL: 4}

    package = models.ForeignKey("registry_app.ModelPackage", on_delete=models.PROTECT, related_name="findings")
    group = models.ForeignKey("registry_app.ModelPackageGroup", on_delete=models.PROTECT, related_name="findings")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="owned_findings"
    )
    owner_email = models.EmailField(blank=True, help_text="A team address, when no single person owns it")
    due_date = models.DateField(null=True, blank=True)
    blocks_approval = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    raised_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="raised_findings")
    raised_at = models.DateTimeField(default=timezone.now)
    closing_comment = models.TextField(blank=True)
    evidence_url = models.URLField(max_length=2000, blank=True, validators=[evidence_url_validator])
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    risk_justification = models.TextField(blank=True)
    signoff = models.ForeignKey(
        "registry_app.SignOff", null=True, blank=True, on_delete=models.PROTECT, related_name="created_findings"
    )
    condition_of = models.ManyToManyField("registry_app.SignOff", blank=True, related_name="conditions")
    policy_version = models.ForeignKey(
        "registry_app.PolicyVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The published policy version in force when it was raised. Empty: built-in default",
    )

    class Meta:
        ordering = ["-raised_at", "-id"]
        indexes = [
            models.Index(fields=["group", "state"], name="finding_group_state"),
            models.Index(fields=["owner", "due_date"], name="finding_owner_due"),
            models.Index(fields=["state", "due_date"], name="finding_state_due"),
        ]

    def __str__(self) -> str:
        return f"{self.ref} {self.title}"

    @property
    def ref(self) -> str:
        """How people name a finding: ``F-12``."""
        return f"F-{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES
