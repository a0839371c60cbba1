from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models

ROLE_ARN_RE = r"^arn:aws[a-z\-]*:iam::\d{12}:role/[\w+=,.@/-]+$"


class RegistrySource(models.Model):
    """One SageMaker Model Registry to mirror: an account (directly or via AssumeRole) and a region.

    No credentials are stored: the worker's own boto3 credential chain is used, optionally
    followed by ``sts:AssumeRole`` into ``role_arn`` with ``external_id``.
    """

    name = models.SlugField(max_length=64, unique=True)
    region = models.CharField(
        max_length=32, validators=[RegexValidator(r"^[a-z]{2}(-[a-z]+)+-\d$", "Not an AWS region name")]
    )
    role_arn = models.CharField(
        max_length=2048, blank=True, validators=[RegexValidator(ROLE_ARN_RE, "Not an IAM role ARN")]
    )
    external_id = models.CharField(max_length=1224, blank=True)
    cloudtrail_bucket = models.CharField(max_length=63, blank=True)
    cloudtrail_prefix = models.CharField(max_length=1024, blank=True)
    events_queue_url = models.URLField(max_length=2048, blank=True)
    enabled = models.BooleanField(default=True)
    account_id = models.CharField(
        max_length=12, blank=True, help_text="Discovered on first sync (sts:GetCallerIdentity)."
    )

    # Conditional-UPDATE lock: one sync per source at a time, on SQLite and PostgreSQL alike.
    sync_lock_token = models.CharField(max_length=64, blank=True)
    sync_locked_until = models.DateTimeField(null=True, blank=True)

    # Set when a first sync finished complete (packages, reports, cards, endpoints); until then every
    # requested sync of this source runs as a full reconciliation, whatever mode was asked.
    first_synced_at = models.DateTimeField(null=True, blank=True)
    # Content changes (InferenceSpecification, ModelCard, metadata...) leave the ListModelPackages summary
    # alone: the incremental pass finds them with Search on LastModifiedTime from this watermark (minus a
    # margin). It only moves forward, and only after the records before it were committed.
    search_watermark = models.DateTimeField(null=True, blank=True)
    # Set while Search is denied to the source's role (the incremental pass then relies on events and the
    # nightly full reconciliation for content changes), with AWS's answer; cleared when Search works.
    search_denied_at = models.DateTimeField(null=True, blank=True)
    search_error = models.CharField(max_length=500, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.region})"
