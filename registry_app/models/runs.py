from __future__ import annotations

from django.db import models


class SyncRun(models.Model):
    """One execution of a sync for one source, recorded explicitly (not via signals)."""

    class Mode(models.TextChoices):
        INCREMENTAL = "incremental", "Incremental"
        FULL = "full", "Full reconciliation"
        EVENT = "event", "EventBridge event"
        ENDPOINTS = "endpoints", "Endpoints"
        PACKAGE = "package", "Single package"

    class Trigger(models.TextChoices):
        BEAT = "beat", "Schedule"
        MANUAL = "manual", "Sync now (web)"
        COMMAND = "command", "Management command"
        EVENT = "event", "Registry event"
        PUSH = "push", "After a push"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Succeeded with errors"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped (another sync holds the lock)"

    source = models.ForeignKey("registry_app.RegistrySource", on_delete=models.CASCADE, related_name="runs")
    mode = models.CharField(max_length=16, choices=Mode.choices)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    task_id = models.CharField(max_length=64, blank=True)
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    aws_seconds = models.FloatField(null=True, blank=True, help_text="Time spent inside AWS calls (summed).")
    aws_calls = models.JSONField(default=dict, blank=True, help_text="API calls by operation.")
    counts = models.JSONField(default=dict, blank=True)
    progress = models.CharField(max_length=200, blank=True)
    errors = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-queued_at", "-id"]
        indexes = [models.Index(fields=["source", "-queued_at"])]

    def __str__(self) -> str:
        return f"{self.source_id}:{self.mode}:{self.status}"

    @property
    def total_calls(self) -> int:
        return sum(int(v) for v in (self.aws_calls or {}).values())

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)
