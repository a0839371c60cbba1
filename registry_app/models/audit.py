"""Audit: CloudTrail events kept forever, the dashboard's own tamper-evident log, deployments,
and decisions made outside the dashboard."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Lower
from django.db.models.lookups import Exact


def endpoint_name_is(name: str, field_name: str = "endpoint_name") -> Q:
    """``LOWER(field) = LOWER(name)``: a case-insensitive match on an endpoint name that the
    ``Lower(endpoint_name)`` indexes of CloudTrailEvent and EndpointDeployment serve (``iexact``
    compiles to ``UPPER(...)`` / ``LIKE``, which no index serves). SageMaker endpoint names are
    case-insensitive and endpoint ARNs lower-case them."""
    return Q(Exact(Lower(field_name), Lower(Value(name))))


class JSONTextField(models.JSONField):
    """A JSON document kept as plain text: dicts in, dicts out, as with ``JSONField``, without the
    database parsing every row it stores (PostgreSQL's ``jsonb`` input, SQLite's ``JSON_VALID``
    check) and without SQL lookups into the document (``raw__key`` is refused, not mis-compiled).

    For append-heavy evidence that is only ever read back whole: CloudTrail records arrive as the
    record's own JSON text and are stored as such.
    """

    _lookups_kept = frozenset({"isnull"})

    def get_internal_type(self) -> str:
        return "TextField"

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if not prepared:
            value = self.get_prep_value(value)
        if value is None or hasattr(value, "as_sql"):
            return value
        return json.dumps(value, cls=self.encoder)

    def get_lookup(self, lookup_name: str) -> Any:
        return super().get_lookup(lookup_name) if lookup_name in self._lookups_kept else None

    def get_transform(self, name: str) -> Any:
        return None


class CloudTrailEvent(models.Model):
    """One CloudTrail record (from LookupEvents or the trail's S3 files), de-duplicated by eventID.

    A backfill writes a million of these, so every index is one a query needs (see the comments in
    ``Meta``) and the foreign keys carry no database constraint: the ingest writes ids from the
    mirror it just read, the mirror only soft-deletes, and Django still applies ``SET_NULL`` when a
    row is deleted through the ORM. A per-row constraint check (a trigger on PostgreSQL) and an
    index per key cost more than the whole row otherwise.
    """

    class Via(models.TextChoices):
        LOOKUP = "lookup", "LookupEvents"
        S3 = "s3", "Trail S3 files"
        EVENTBRIDGE = "eventbridge", "EventBridge"

    class ResourceType(models.TextChoices):
        PACKAGE = "package", "Model package"
        GROUP = "group", "Model package group"
        CARD = "card", "Model card"
        MODEL = "model", "Model"
        ENDPOINT_CONFIG = "endpoint_config", "Endpoint config"
        ENDPOINT = "endpoint", "Endpoint"
        ROLE = "role", "IAM role (AssumeRole)"
        UNKNOWN = "", "Unlinked"

    event_id = models.CharField(max_length=128)  # unique: see Meta.constraints (no extra LIKE index)
    source = models.ForeignKey(
        "registry_app.RegistrySource",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    via = models.CharField(max_length=16, choices=Via.choices)
    event_time = models.DateTimeField()
    event_name = models.CharField(max_length=128)
    event_source = models.CharField(max_length=128, blank=True)
    aws_region = models.CharField(max_length=32, blank=True)
    account_id = models.CharField(max_length=12, blank=True)
    read_only = models.BooleanField(null=True)
    error_code = models.CharField(max_length=256, blank=True)
    actor_type = models.CharField(max_length=32, blank=True)
    actor_arn = models.CharField(max_length=2048, blank=True)
    actor_name = models.CharField(max_length=256, blank=True, help_text="Human-readable: sourceIdentity, session...")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_index=False,
        db_constraint=False,
    )
    resource_type = models.CharField(max_length=16, choices=ResourceType.choices, blank=True)
    resource_name = models.CharField(max_length=2048, blank=True)
    package = models.ForeignKey(
        "registry_app.ModelPackage",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="cloudtrail_events",
        db_index=False,  # ct_package_time starts with it
        db_constraint=False,
    )
    group = models.ForeignKey(
        "registry_app.ModelPackageGroup",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    # As CloudTrail spelled it; matched case-insensitively through ct_endpoint_time (Lower(...)).
    endpoint_name = models.CharField(max_length=63, blank=True)
    raw = JSONTextField()  # the record's own JSON text
    # The trail log file the event was read from (its validation state lives there, one row per
    # file); NULL for LookupEvents events no trail file has delivered yet. No index: nothing looks
    # events up by file on a hot path, and the column is written a million times in a backfill.
    trail_file = models.ForeignKey(
        "registry_app.TrailLogFile",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="events",
        db_index=False,
        db_constraint=False,
    )
    ingested_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-event_time", "-id"]
        constraints = [models.UniqueConstraint(fields=["event_id"], name="ct_event_id_unique")]
        indexes = [
            # Global timeline, search without filters, date-range exports: keyset newest first.
            models.Index(fields=["-event_time", "-id"], name="ct_time_keyset"),
            # /audit/?actor=, ?event=, ?resource= (exact matches), and as-of/bypass lookups by ARN.
            models.Index(fields=["actor_name", "-event_time"], name="ct_actor_time"),
            models.Index(fields=["event_name", "-event_time"], name="ct_name_time"),
            models.Index(fields=["resource_name", "-event_time"], name="ct_resource_time"),
            # Package timelines and the as-of status history.
            models.Index(fields=["package", "-event_time"], name="ct_package_time"),
            # Endpoint timelines and deployment rebuilds, case-insensitive (ARNs lower-case names).
            models.Index(Lower("endpoint_name"), F("event_time").desc(), name="ct_endpoint_time"),
        ]

    def __str__(self) -> str:
        return f"{self.event_name} {self.event_id}"


class AuditCursor(models.Model):
    """Where an incremental CloudTrail ingest resumes (per source and kind), advanced after commit."""

    class Kind(models.TextChoices):
        LOOKUP = "lookup", "LookupEvents"
        S3 = "s3", "Trail S3 files"
        BACKFILL = "backfill", "Trail S3 history (backfill)"

    source = models.ForeignKey("registry_app.RegistrySource", on_delete=models.CASCADE, related_name="audit_cursors")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    position = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "kind"], name="uniq_audit_cursor")]

    def __str__(self) -> str:
        return f"{self.source_id}:{self.kind}"


class AuditLogEntry(models.Model):
    """The dashboard's own append-only, hash-chained log (never updated or deleted by the app)."""

    class Via(models.TextChoices):
        WEB = "web", "Web"
        TASK = "task", "Task"
        SYNC = "sync", "Sync"
        COMMAND = "command", "Command"

    seq = models.PositiveBigIntegerField(unique=True)
    created_at = models.DateTimeField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_name = models.CharField(max_length=150, blank=True)
    via = models.CharField(max_length=16, choices=Via.choices)
    correlation_id = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    subject_type = models.CharField(max_length=64, blank=True)
    subject_id = models.CharField(max_length=64, blank=True)
    subject_repr = models.CharField(max_length=300, blank=True)
    package = models.ForeignKey(
        "registry_app.ModelPackage", null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries"
    )
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    message = models.TextField(blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-seq"]
        verbose_name_plural = "audit log entries"

    def __str__(self) -> str:
        return f"#{self.seq} {self.action}"


class EndpointDeployment(models.Model):
    """Which package version an endpoint variant served, from when to when, with its evidence."""

    source = models.ForeignKey("registry_app.RegistrySource", null=True, blank=True, on_delete=models.SET_NULL)
    endpoint_name = models.CharField(max_length=63)  # matched through deploy_endpoint_start (Lower(...))
    variant_name = models.CharField(max_length=63, blank=True)
    config_name = models.CharField(max_length=63, blank=True)
    model_name = models.CharField(max_length=63, blank=True)
    package_arn = models.CharField(max_length=2048, blank=True)
    package = models.ForeignKey(
        "registry_app.ModelPackage", null=True, blank=True, on_delete=models.SET_NULL, related_name="deployment_history"
    )
    weight = models.FloatField(null=True, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    evidence = models.JSONField(default=dict, blank=True, help_text="CloudTrail event ids / observation times")

    class Meta:
        ordering = ["endpoint_name", "-started_at"]
        indexes = [
            # "What served E at T": the windows of one endpoint (any spelling) started by T, newest first.
            models.Index(Lower("endpoint_name"), F("started_at").desc(), F("ended_at"), name="deploy_endpoint_start"),
            # The as-of form's list of endpoint names (a DISTINCT over this index alone).
            models.Index(fields=["endpoint_name"], name="deploy_endpoint_name"),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint_name}:{self.variant_name} {self.package_arn}"


class OutsideDecision(models.Model):
    """A status change the mirror saw that no dashboard push explains (Studio, CLI, pipelines)."""

    package = models.ForeignKey("registry_app.ModelPackage", on_delete=models.PROTECT, related_name="outside_decisions")
    observed_at = models.DateTimeField()
    from_status = models.CharField(max_length=32, blank=True)
    to_status = models.CharField(max_length=32)
    actor_name = models.CharField(max_length=256, blank=True)
    actor_arn = models.CharField(max_length=2048, blank=True)
    event = models.ForeignKey(CloudTrailEvent, null=True, blank=True, on_delete=models.SET_NULL)
    changed_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-observed_at"]

    def __str__(self) -> str:
        return f"{self.package_id}: {self.from_status}→{self.to_status}"
