"""Evidence about the evidence: which CloudTrail files were validated against their signed digests,
and where the audit log's head was anchored outside the database (and what the last check found)."""

from __future__ import annotations

from django.db import models


class TrailDigest(models.Model):
    """One CloudTrail digest file (hourly, signed with the Region's key, chained to the previous one).

    Rows are written by the S3 ingest (``audit.digest_ingest``). ``state`` says whether the digest
    itself is authentic (signature, key, location); ``chain`` whether its link to the previous
    digest holds. A digest that could not be checked (the public keys were not available) stays
    ``unchecked`` and is checked again by a later run.
    """

    class State(models.TextChoices):
        VALID = "valid", "Valid"
        FAILED = "failed", "Failed"
        UNCHECKED = "unchecked", "Not checked yet"

    class Chain(models.TextChoices):
        LINKED = "linked", "Linked to the previous digest"
        START = "start", "Starting digest (validation started or restarted)"
        BROKEN = "broken", "Broken"
        UNKNOWN = "", "Not checked"

    source = models.ForeignKey(
        "registry_app.RegistrySource", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    bucket = models.CharField(max_length=63)
    key = models.CharField(max_length=1024)
    backfill = models.BooleanField(default=False, help_text="A ``_backfill`` digest (late log files)")
    digest_start = models.DateTimeField(null=True, blank=True)
    digest_end = models.DateTimeField(null=True, blank=True)
    previous_key = models.CharField(max_length=1024, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the uncompressed digest file")
    signature = models.TextField(blank=True, help_text="x-amz-meta-signature (hex)")
    fingerprint = models.CharField(max_length=64, blank=True)
    log_files = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=16, choices=State.choices, default=State.UNCHECKED)
    chain = models.CharField(max_length=16, choices=Chain.choices, blank=True)
    reason = models.TextField(blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    alerted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-digest_end", "-id"]
        constraints = [models.UniqueConstraint(fields=["bucket", "key"], name="trail_digest_key")]
        indexes = [
            models.Index(fields=["source", "digest_end"], name="trail_digest_source_end"),
            models.Index(fields=["state", "alerted_at"], name="trail_digest_state"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.state})"


class TrailLogFile(models.Model):
    """One CloudTrail log file: the SHA-256 we computed when we read it, the one its digest records,
    and the verdict. Every ``CloudTrailEvent`` read from the file points here (``trail_file``), so an
    event's validation state is one join away and a verdict changes one row, not a million."""

    class State(models.TextChoices):
        PENDING = "pending", "No digest yet"
        VALIDATED = "validated", "Validated"
        FAILED = "failed", "Validation failed"

    source = models.ForeignKey(
        "registry_app.RegistrySource", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    bucket = models.CharField(max_length=63)
    key = models.CharField(max_length=1024)
    delivered_at = models.DateTimeField(null=True, blank=True, help_text="The delivery minute in the file name")
    sha256 = models.CharField(max_length=64, blank=True, help_text="Of the uncompressed file, as we read it")
    expected_sha256 = models.CharField(max_length=64, blank=True, help_text="As its digest records it")
    digest = models.ForeignKey(TrailDigest, null=True, blank=True, on_delete=models.SET_NULL, related_name="files")
    read_at = models.DateTimeField(null=True, blank=True)
    records = models.PositiveIntegerField(default=0, help_text="Relevant events in the file")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    reason = models.TextField(blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    alerted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-delivered_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["bucket", "key"], name="trail_file_key")]
        indexes = [
            # Files still waiting for a digest (and the counts per state on /sync/ and /metrics).
            models.Index(fields=["source", "state", "delivered_at"], name="trail_file_state"),
            models.Index(fields=["state", "alerted_at"], name="trail_file_alert"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.state})"


class AuditAnchor(models.Model):
    """A copy of the audit chain's head written outside the database (S3 object or local file).

    This row is bookkeeping for ``/metrics`` and the status page; the trusted copy is the one
    written out (``location``), which ``verify_audit`` reads back."""

    class Reason(models.TextChoices):
        SCHEDULE = "schedule", "Scheduled"
        EXPORT = "export", "Auditor export"
        COMMAND = "command", "Command"

    seq = models.PositiveBigIntegerField(null=True, blank=True, help_text="Empty: the log was empty")
    hash = models.CharField(max_length=64, blank=True)
    entry_time = models.DateTimeField(null=True, blank=True)
    anchored_at = models.DateTimeField()
    reason = models.CharField(max_length=16, choices=Reason.choices)
    location = models.CharField(max_length=1200, blank=True)
    error = models.TextField(blank=True, help_text="Set when the copy could not be written")

    class Meta:
        ordering = ["-anchored_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.seq} at {self.anchored_at:%Y-%m-%d %H:%M}"


class AuditVerification(models.Model):
    """One run of ``verify_audit``: the chain walk and the comparison with the latest anchor."""

    class Problem(models.TextChoices):
        NONE = "", "None"
        EDITED = "edited", "An entry was edited"
        MISSING = "missing", "Entries are missing inside the chain"
        REORDERED = "reordered", "Entries were reordered or replaced"
        BAD_GENESIS = "bad_genesis", "The first entry is not the chain's start"
        TRUNCATED = "truncated", "The newest entries were deleted"
        REWRITTEN = "rewritten", "The tail was rewritten"
        NO_ANCHOR = "no_anchor", "No anchor could be read"

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    checked = models.PositiveBigIntegerField(default=0)
    head_seq = models.PositiveBigIntegerField(null=True, blank=True)
    head_hash = models.CharField(max_length=64, blank=True)
    anchor_seq = models.PositiveBigIntegerField(null=True, blank=True)
    anchor_hash = models.CharField(max_length=64, blank=True)
    anchor_at = models.DateTimeField(null=True, blank=True)
    anchor_location = models.CharField(max_length=1200, blank=True)
    problem = models.CharField(max_length=16, choices=Problem.choices, blank=True)
    first_bad_seq = models.PositiveBigIntegerField(null=True, blank=True)
    detail = models.TextField(blank=True)
    trigger = models.CharField(max_length=16, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.started_at:%Y-%m-%d %H:%M} {'ok' if self.ok else self.problem}"
