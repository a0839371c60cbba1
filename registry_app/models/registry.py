"""The local mirror of SageMaker Model Registry state.

Rows are never deleted by the sync: resources that vanish from the registry get
``deleted_at`` set. Every observed change of a package appends a ``PackageObservation``.
"""

from __future__ import annotations

from django.db import models


class ApprovalStatus(models.TextChoices):
    PENDING = "PendingManualApproval", "Pending manual approval"
    APPROVED = "Approved", "Approved"
    REJECTED = "Rejected", "Rejected"


class CardStatus(models.TextChoices):
    DRAFT = "Draft", "Draft"
    PENDING_REVIEW = "PendingReview", "Pending review"
    APPROVED = "Approved", "Approved"
    ARCHIVED = "Archived", "Archived"


REPRODUCIBILITY_KEYS = ("TrainingDataS3VersionId", "ContainerImageDigest", "GitCommitSha", "RequirementsHash")


class ModelPackageGroup(models.Model):
    source = models.ForeignKey("registry_app.RegistrySource", on_delete=models.PROTECT, related_name="groups")
    name = models.CharField(max_length=170)
    arn = models.CharField(max_length=2048, unique=True)
    owner_account = models.CharField(max_length=12, blank=True)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(null=True, blank=True)
    created_by = models.JSONField(default=dict, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["name"]), models.Index(fields=["source", "deleted_at"])]

    def __str__(self) -> str:
        return self.name

    @property
    def is_shared(self) -> bool:
        return bool(self.owner_account and self.source.account_id and self.owner_account != self.source.account_id)


class ModelCard(models.Model):
    """A standalone SageMaker model card (the ``ModelCard`` resource, not the embedded one)."""

    source = models.ForeignKey("registry_app.RegistrySource", on_delete=models.PROTECT, related_name="cards")
    name = models.CharField(max_length=63)
    arn = models.CharField(max_length=2048, unique=True)
    version = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=16, choices=CardStatus.choices, blank=True)
    content = models.JSONField(null=True, blank=True)
    content_error = models.TextField(blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(null=True, blank=True)
    last_modified_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["source", "name"], name="uniq_card_per_source")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class ModelPackage(models.Model):
    source = models.ForeignKey("registry_app.RegistrySource", on_delete=models.PROTECT, related_name="packages")
    group = models.ForeignKey(ModelPackageGroup, on_delete=models.PROTECT, related_name="packages")
    arn = models.CharField(max_length=2048, unique=True)
    version = models.PositiveIntegerField()
    description = models.TextField(blank=True)
    approval_status = models.CharField(max_length=32, choices=ApprovalStatus.choices, blank=True, db_index=True)
    approval_description = models.TextField(blank=True)
    package_status = models.CharField(max_length=32, blank=True)
    registration_type = models.CharField(max_length=16, blank=True)
    lifecycle_stage = models.CharField(max_length=63, blank=True)
    lifecycle_stage_status = models.CharField(max_length=63, blank=True)
    lifecycle_stage_description = models.TextField(blank=True)
    created_at = models.DateTimeField(null=True, blank=True)
    created_by = models.JSONField(default=dict, blank=True)
    last_modified_at = models.DateTimeField(null=True, blank=True)
    last_modified_by = models.JSONField(default=dict, blank=True)
    inference_specification = models.JSONField(default=dict, blank=True)
    customer_metadata = models.JSONField(default=dict, blank=True)
    metadata_properties = models.JSONField(default=dict, blank=True)
    model_metrics = models.JSONField(default=dict, blank=True)
    embedded_card_status = models.CharField(max_length=16, blank=True)
    embedded_card_content = models.JSONField(null=True, blank=True)
    model_card = models.ForeignKey(ModelCard, null=True, blank=True, on_delete=models.SET_NULL, related_name="packages")
    raw = models.JSONField(default=dict, blank=True, help_text="The last DescribeModelPackage/Search record.")
    content_hash = models.CharField(max_length=64, blank=True, help_text="Hash of `raw`, for change detection.")
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["group__name", "-version"]
        constraints = [models.UniqueConstraint(fields=["group", "version"], name="uniq_version_per_group")]
        indexes = [
            models.Index(fields=["approval_status", "created_at"]),
            models.Index(fields=["source", "deleted_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.group.name}/{self.version}"

    @property
    def images(self) -> list[dict]:
        return list((self.inference_specification or {}).get("Containers") or [])

    @property
    def reproducibility(self) -> list[tuple[str, str | None]]:
        meta = self.customer_metadata or {}
        return [(key, meta.get(key)) for key in REPRODUCIBILITY_KEYS]

    @property
    def missing_reproducibility(self) -> list[str]:
        return [key for key, value in self.reproducibility if not value]


class EvaluationReport(models.Model):
    """One JSON metrics source of a package's ``ModelMetrics``, fetched from S3 and parsed."""

    class Status(models.TextChoices):
        OK = "ok", "Parsed"
        FETCH_ERROR = "fetch_error", "Could not fetch"
        PARSE_ERROR = "parse_error", "Could not parse"
        DIGEST_MISMATCH = "digest_mismatch", "Digest mismatch"
        TOO_LARGE = "too_large", "Too large"
        SKIPPED = "skipped", "Not JSON / not fetched"
        EMPTY = "empty", "Empty report"

    class Kind(models.TextChoices):
        REGRESSION = "regression", "Regression"
        BINARY = "binary_classification", "Binary classification"
        MULTICLASS = "multiclass_classification", "Multiclass classification"
        BIAS = "clarify_bias", "Clarify bias"
        EXPLAINABILITY = "clarify_explainability", "Clarify explainability"
        MODEL_CARD_METRICS = "model_card_metrics", "Model card metric groups"
        UNKNOWN = "unknown", "Unrecognised"

    package = models.ForeignKey(ModelPackage, on_delete=models.CASCADE, related_name="reports")
    slot = models.CharField(max_length=64, help_text="Where in ModelMetrics, e.g. ModelQuality.Statistics")
    s3_uri = models.CharField(max_length=1024)
    content_type = models.CharField(max_length=256, blank=True)
    content_digest = models.CharField(max_length=72, blank=True, help_text="As declared in ModelMetrics")
    sha256 = models.CharField(max_length=64, blank=True, help_text="Of the bytes fetched")
    size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    kind = models.CharField(max_length=32, choices=Kind.choices, blank=True)
    error = models.TextField(blank=True)
    document = models.JSONField(null=True, blank=True, help_text="The parsed JSON as fetched")
    curves = models.JSONField(default=dict, blank=True)
    confusion_matrix = models.JSONField(null=True, blank=True)
    fetched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["slot"]
        constraints = [models.UniqueConstraint(fields=["package", "slot"], name="uniq_report_slot")]

    def __str__(self) -> str:
        return f"{self.package_id}:{self.slot}"


class Metric(models.Model):
    """A normalised metric from an evaluation report (denormalised onto the package for queries)."""

    report = models.ForeignKey(EvaluationReport, on_delete=models.CASCADE, related_name="metrics")
    package = models.ForeignKey(ModelPackage, on_delete=models.CASCADE, related_name="metrics")
    name = models.CharField(max_length=255)
    value = models.FloatField(null=True, blank=True)
    standard_deviation = models.FloatField(null=True, blank=True)
    kind = models.CharField(max_length=32)
    facet = models.CharField(max_length=255, blank=True, help_text="Bias facet=value, when applicable")
    stage = models.CharField(max_length=32, blank=True, help_text="pre_training / post_training for bias")

    class Meta:
        ordering = ["kind", "name", "facet"]
        indexes = [models.Index(fields=["package", "name"])]

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


class Endpoint(models.Model):
    source = models.ForeignKey("registry_app.RegistrySource", on_delete=models.PROTECT, related_name="endpoints")
    name = models.CharField(max_length=63)
    arn = models.CharField(max_length=2048, unique=True)
    status = models.CharField(max_length=32, blank=True)
    config_name = models.CharField(max_length=63, blank=True)
    created_at = models.DateTimeField(null=True, blank=True)
    last_modified_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class EndpointVariant(models.Model):
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="variants")
    variant_name = models.CharField(max_length=63)
    model_name = models.CharField(max_length=63, blank=True)
    package_arn = models.CharField(max_length=2048, blank=True)
    package = models.ForeignKey(
        ModelPackage, null=True, blank=True, on_delete=models.SET_NULL, related_name="deployments"
    )
    weight = models.FloatField(null=True, blank=True)
    instance_type = models.CharField(max_length=64, blank=True)
    instance_count = models.PositiveIntegerField(null=True, blank=True)
    # DescribeModel answered "Could not find model": the variant still serves (SageMaker keeps the
    # deployed containers), and package_arn/package are the last ones the mirror knew for it.
    model_deleted = models.BooleanField(default=False)

    class Meta:
        ordering = ["endpoint__name", "variant_name"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "variant_name"], name="uniq_variant")]

    def __str__(self) -> str:
        return f"{self.endpoint_id}:{self.variant_name}"


class PackageObservation(models.Model):
    """Append-only history of what the sync saw change on a package."""

    class Change(models.TextChoices):
        CREATED = "created", "First seen"
        UPDATED = "updated", "Changed"
        DELETED = "deleted", "Disappeared from registry"
        RESTORED = "restored", "Reappeared in registry"

    package = models.ForeignKey(ModelPackage, on_delete=models.PROTECT, related_name="observations")
    sync_run = models.ForeignKey("registry_app.SyncRun", null=True, blank=True, on_delete=models.SET_NULL)
    observed_at = models.DateTimeField(db_index=True)
    change = models.CharField(max_length=16, choices=Change.choices)
    changes = models.JSONField(default=dict, blank=True, help_text="{field: [before, after]}")

    class Meta:
        ordering = ["-observed_at", "-id"]

    def __str__(self) -> str:
        return f"{self.package_id}:{self.change}@{self.observed_at:%Y-%m-%d %H:%M}"
