"""Model package groups: listed (own and shared through RAM, with their tags), stored, marked deleted.

Functions of a ``SyncContext``: the full reconciliation's first step lists them all; the package passes
describe a group they have not seen yet, and find (or create) the row a package belongs to.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from registry_app.aws.errors import AccessDeniedError, AwsError, ValidationError
from registry_app.mirror import mapping as sync
from registry_app.mirror.context import SyncContext
from registry_app.models import ModelPackageGroup
from registry_app.review.on_sync import group_observed  # the stored review state filters by tags


def sync_groups(ctx: SyncContext) -> tuple[set[str], bool]:
    """Store every listed group; returns the listed ARNs and whether the shared listing completed."""
    summaries: dict[str, dict[str, Any]] = {}
    for page in ctx.client.iter_group_pages():
        summaries.update({s["ModelPackageGroupArn"]: s for s in page})
    cross_account_listed = True
    try:
        for page in ctx.client.iter_group_pages(cross_account=True):
            summaries.update({s["ModelPackageGroupArn"]: s for s in page})
    except (AccessDeniedError, ValidationError) as exc:
        ctx.error("ListModelPackageGroups(CrossAccount)", str(exc))
        cross_account_listed = False
    existing = {g.arn: g for g in ModelPackageGroup.objects.filter(source=ctx.source)}
    for arn, summary in summaries.items():
        try:
            tags = ctx.client.list_tags(arn)
        except AwsError as exc:
            ctx.error(f"ListTags {arn}", str(exc))
            tags = None
        store_group(ctx, sync.group_fields(summary, tags), existing.get(arn))
    return set(summaries), cross_account_listed


def describe_and_store_group(ctx: SyncContext, name_or_arn: str) -> None:
    try:
        described = ctx.client.describe_group(name_or_arn)
        tags = ctx.client.list_tags(described["ModelPackageGroupArn"])
    except AwsError as exc:
        ctx.error(f"DescribeModelPackageGroup {name_or_arn}", str(exc))
        return
    fields = sync.group_fields(described, tags)
    existing = ModelPackageGroup.objects.filter(arn=fields["arn"]).first()
    ctx.groups[fields["name"]] = store_group(ctx, fields, existing)


def store_group(ctx: SyncContext, fields: dict[str, Any], existing: ModelPackageGroup | None) -> ModelPackageGroup:
    now = timezone.now()
    if existing is None:
        group = ModelPackageGroup.objects.create(source=ctx.source, last_seen_at=now, **fields)
        ctx.count("groups_created")
        return group
    changes = sync.diff(existing.__dict__, fields, tuple(fields))
    if changes or existing.deleted_at is not None:
        for name in changes:
            setattr(existing, name, fields[name])
        existing.deleted_at = None
        existing.last_seen_at = now
        with transaction.atomic():  # the group and its packages' review state commit together
            existing.save()
            group_observed(existing.pk)
        ctx.count("groups_updated")
    return existing


def group_for(ctx: SyncContext, fields: dict[str, Any]) -> ModelPackageGroup:
    name = fields["group_name"]
    group = ctx.groups.get(name)
    if group is None:
        arn = sync.group_arn_for_package(fields["arn"], name)
        group = ModelPackageGroup.objects.filter(arn=arn).first() or ModelPackageGroup.objects.create(
            source=ctx.source, name=name, arn=arn, owner_account=sync.parse_arn(arn).account
        )
        ctx.groups[name] = group
    return group


def mark_vanished_groups(
    ctx: SyncContext, seen_arns: set[str], *, cross_account_listed: bool = True
) -> list[ModelPackageGroup]:
    """Groups the complete listing no longer returns are marked deleted, and returned: their packages
    are the package pass's to mark.

    Shared groups disappear from listings when the share is revoked: also marked deleted,
    but only when the shared listing itself completed.
    """
    vanished = [
        g
        for g in ctx.groups.values()
        if g.deleted_at is None
        and g.arn not in seen_arns
        and (cross_account_listed or g.owner_account == ctx.source.account_id)
    ]
    if not vanished:
        return []
    now = timezone.now()
    ModelPackageGroup.objects.filter(pk__in=[g.pk for g in vanished]).update(deleted_at=now)
    for group in vanished:
        group.deleted_at = now
    ctx.count("groups_deleted", len(vanished))
    return vanished


def group_of(package_arn: str) -> str:
    """The group name in a package ARN (``.../model-package/<group>/<version>``)."""
    resource = sync.parse_arn(package_arn).resource
    return resource.rsplit("/", 1)[0]
