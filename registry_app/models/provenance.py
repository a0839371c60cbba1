"""Training provenance and lineage, mirrored: the jobs that made a package and the graph around it.

* ``TrainingJob`` / ``ProcessingJob``: what ``DescribeTrainingJob`` / ``DescribeProcessingJob`` said,
  fetched once (a finished job never changes) or, when it could not be described, the error.
* ``JobData``: every S3 location a job read or wrote, one row each, so "what was trained on
  s3://bucket/prefix" is an indexed prefix query rather than a scan of JSON.
* ``LineageEntity`` / ``LineageEdge``: the ML Lineage Tracking vertices (artifacts, actions, contexts,
  trial components) and associations reachable from the packages, within a bounded depth.
* ``PackageLineage``: which entities each package's walk reached and how (ancestor, descendant), so a
  package's graph and an entity's packages are each one indexed query.
* ``PackageTraining``: the package's training job, where the name came from, and when it was checked.
"""

from __future__ import annotations

from django.db import models

FINISHED_STATUSES = ("Completed", "Failed", "Stopped")


class TrainingJob(models.Model):
    source = models.ForeignKey("registry_app.RegistrySource", on_delete=models.PROTECT, related_name="training_jobs")
    name = models.CharField(max_length=63)
    arn = models.CharField(max_length=256, blank=True)
    status = models.CharField(max_length=32, blank=True, help_text="TrainingJobStatus; empty when not described")
    secondary_status = models.CharField(max_length=64, blank=True)
    failure_reason = models.TextField(blank=True)
    error = models.TextField(blank=True, help_text="Why DescribeTrainingJob failed, when it did")
    error_code = models.CharField(max_length=64, blank=True)
    missing = models.BooleanField(default=False, help_text="DescribeTrainingJob answered: no such job")
    hyperparameters = models.JSONField(default=dict, blank=True)
    algorithm_name = models.CharField(max_length=256, blank=True)
    training_image = models.CharField(max_length=255, blank=True)
    image_digest = models.CharField(max_length=80, blank=True)
    input_mode = models.CharField(max_length=32, blank=True)
    output_path = models.CharField(max_length=1024, blank=True)
    output_kms_key = models.CharField(max_length=2048, blank=True)
    model_artifact = models.CharField(max_length=1024, blank=True)
    final_metrics = models.JSONField(default=list, blank=True, help_text="[{name, value}] from FinalMetricDataList")
    instance_type = models.CharField(max_length=64, blank=True)
    instance_count = models.PositiveIntegerField(null=True, blank=True)
    volume_size_gb = models.PositiveIntegerField(null=True, blank=True)
    volume_kms_key = models.CharField(max_length=2048, blank=True)
    role_arn = models.CharField(max_length=2048, blank=True)
    network_isolation = models.BooleanField(null=True, blank=True)
    inter_container_encryption = models.BooleanField(null=True, blank=True)
    managed_spot = models.BooleanField(null=True, blank=True)
    vpc_config = models.JSONField(default=dict, blank=True)
    tuning_job_arn = models.CharField(max_length=256, blank=True)
    created_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_s = models.PositiveIntegerField(null=True, blank=True)
    billable_s = models.PositiveIntegerField(null=True, blank=True)
    record = models.JSONField(
        default=dict, blank=True, help_text="The DescribeTrainingJob answer, Environment left out"
    )
    described_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["source", "name"], name="uniq_training_job_per_source")]

    def __str__(self) -> str:
        return self.name

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


class ProcessingJob(models.Model):
    source = models.ForeignKey("registry_app.RegistrySource", on_delete=models.PROTECT, related_name="processing_jobs")
    name = models.CharField(max_length=63)
    arn = models.CharField(max_length=256, blank=True)
    status = models.CharField(max_length=32, blank=True)
    exit_message = models.TextField(blank=True)
    failure_reason = models.TextField(blank=True)
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    missing = models.BooleanField(default=False)
    image_uri = models.CharField(max_length=255, blank=True)
    role_arn = models.CharField(max_length=2048, blank=True)
    instance_type = models.CharField(max_length=64, blank=True)
    instance_count = models.PositiveIntegerField(null=True, blank=True)
    volume_size_gb = models.PositiveIntegerField(null=True, blank=True)
    volume_kms_key = models.CharField(max_length=2048, blank=True)
    output_kms_key = models.CharField(max_length=2048, blank=True)
    network_isolation = models.BooleanField(null=True, blank=True)
    inter_container_encryption = models.BooleanField(null=True, blank=True)
    training_job_arn = models.CharField(max_length=256, blank=True)
    created_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_s = models.PositiveIntegerField(null=True, blank=True)
    record = models.JSONField(
        default=dict, blank=True, help_text="The DescribeProcessingJob answer, Environment left out"
    )
    described_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["source", "name"], name="uniq_processing_job_per_source")]

    def __str__(self) -> str:
        return self.name

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


class JobData(models.Model):
    """One S3 location a job read (a channel, a processing input) or wrote (an output)."""

    class Direction(models.TextChoices):
        INPUT = "input", "Input"
        OUTPUT = "output", "Output"

    training_job = models.ForeignKey(TrainingJob, null=True, blank=True, on_delete=models.CASCADE, related_name="data")
    processing_job = models.ForeignKey(
        ProcessingJob, null=True, blank=True, on_delete=models.CASCADE, related_name="data"
    )
    direction = models.CharField(max_length=8, choices=Direction.choices)
    name = models.CharField(max_length=256, blank=True, help_text="Channel, input or output name")
    s3_uri = models.CharField(max_length=1024, db_index=True)
    data_type = models.CharField(max_length=32, blank=True, help_text="S3Prefix, ManifestFile, ...")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["direction", "name", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(training_job__isnull=False, processing_job__isnull=True)
                | models.Q(training_job__isnull=True, processing_job__isnull=False),
                name="job_data_has_one_job",
            )
        ]

    def __str__(self) -> str:
        return f"{self.direction}:{self.name}={self.s3_uri}"


class LineageEntity(models.Model):
    """A vertex of SageMaker's lineage graph: an artifact, action, context or trial component."""

    source = models.ForeignKey("registry_app.RegistrySource", on_delete=models.PROTECT, related_name="lineage_entities")
    arn = models.CharField(max_length=256)
    lineage_type = models.CharField(max_length=16, help_text="Artifact, Action, Context or TrialComponent")
    entity_type = models.CharField(max_length=256, blank=True, help_text="Vertex Type: DataSet, Model, Image, ...")
    name = models.CharField(max_length=256, blank=True)
    # Indexed for prefix queries: kept within 1,024 characters and 2,000 UTF-8 bytes (a btree entry's limit
    # on PostgreSQL is about 2,700 bytes); S3 keys are at most 1,024 bytes, so real locations fit.
    source_uri = models.CharField(max_length=1024, blank=True, db_index=True)
    source_version = models.CharField(max_length=1100, blank=True, help_text="SourceIdType:Value (S3Version, ETag)")
    properties = models.JSONField(default=dict, blank=True)
    job_kind = models.CharField(max_length=16, blank=True, help_text="training / processing, for a job's component")
    job_name = models.CharField(max_length=63, blank=True)
    training_job = models.ForeignKey(
        TrainingJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="lineage_entities"
    )
    processing_job = models.ForeignKey(
        ProcessingJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="lineage_entities"
    )
    described_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["lineage_type", "entity_type", "arn"]
        constraints = [models.UniqueConstraint(fields=["source", "arn"], name="uniq_lineage_entity_per_source")]

    def __str__(self) -> str:
        return f"{self.lineage_type}:{self.entity_type}:{self.arn}"


class LineageEdge(models.Model):
    """An association: ``source`` -> ``destination`` (data ContributedTo a job, a job Produced a model)."""

    source_entity = models.ForeignKey(LineageEntity, on_delete=models.CASCADE, related_name="out_edges")
    destination_entity = models.ForeignKey(LineageEntity, on_delete=models.CASCADE, related_name="in_edges")
    association_type = models.CharField(max_length=32, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source_entity", "destination_entity"], name="uniq_lineage_edge")
        ]

    def __str__(self) -> str:
        return f"{self.source_entity_id} -{self.association_type}-> {self.destination_entity_id}"


class PackageLineage(models.Model):
    """An entity a package's lineage walk reached: ``ancestor`` entities went into the package."""

    class Relation(models.TextChoices):
        SELF = "self", "The package's own artifact"
        ANCESTOR = "ancestor", "Went into the package"
        DESCENDANT = "descendant", "Came out of the package"
        RELATED = "related", "Related (through a model it shares)"

    package = models.ForeignKey("registry_app.ModelPackage", on_delete=models.CASCADE, related_name="lineage")
    entity = models.ForeignKey(LineageEntity, on_delete=models.CASCADE, related_name="packages")
    relation = models.CharField(max_length=12, choices=Relation.choices)
    depth = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["package", "entity"], name="uniq_package_lineage")]
        indexes = [models.Index(fields=["entity", "relation"], name="package_lineage_entity")]

    def __str__(self) -> str:
        return f"{self.package_id}:{self.relation}:{self.entity_id}"


class PackageTraining(models.Model):
    """How a package's training job was found, and whether the lineage walk succeeded."""

    class ResolvedFrom(models.TextChoices):
        LINEAGE = "lineage", "ML Lineage Tracking"
        GENERATED_BY = "generated_by", "MetadataProperties.GeneratedBy"
        SOURCE_ALGORITHM = "source_algorithm", "SourceAlgorithmSpecification model data"
        MODEL_DATA_URL = "model_data_url", "Model data URL (job output prefix)"
        MODEL_CARD = "model_card", "Model card training_job_details"
        NONE = "none", "Not found"

    class LineageStatus(models.TextChoices):
        WALKED = "walked", "Walked"
        NO_ARTIFACT = "no_artifact", "No lineage artifact for the package"
        ERROR = "error", "Could not be read"

    package = models.OneToOneField("registry_app.ModelPackage", on_delete=models.CASCADE, related_name="training")
    training_job = models.ForeignKey(
        TrainingJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="packages"
    )
    job_name = models.CharField(max_length=63, blank=True)
    resolved_from = models.CharField(max_length=20, choices=ResolvedFrom.choices, default=ResolvedFrom.NONE)
    candidates = models.JSONField(default=list, blank=True, help_text="[{from, name, account}] every source's answer")
    note = models.TextField(blank=True)
    training_data_version = models.CharField(max_length=256, blank=True, help_text="TrainingDataS3VersionId")
    lineage_root = models.ForeignKey(
        LineageEntity, null=True, blank=True, on_delete=models.SET_NULL, related_name="root_of"
    )
    lineage_status = models.CharField(max_length=16, choices=LineageStatus.choices, blank=True)
    lineage_error = models.TextField(blank=True)
    content_hash = models.CharField(max_length=64, blank=True, help_text="The package content this was checked for")
    checked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.package_id}:{self.job_name or '-'}"
