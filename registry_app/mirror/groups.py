"""Model package groups: listed (own and shared through RAM, with their tags), stored, marked deleted.

Functions of a ``SyncContext``: the full reconciliation's first step lists them all; the package passes
describe a group they have not seen yet, and find (or create) the row a package belongs to.

A package names its group in the record's ``ModelPackageGroupName``; its ARN carries the name lower-cased
(``FraudModel`` -> ``model-package/fraudmodel/3``), so group names are never taken from package ARNs, and
ARNs are compared without regard to case.
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
    existing = {g.arn.lower(): g for g in ModelPackageGroup.objects.filter(source=ctx.source)}
    for arn, summary in summaries.items():
        store_group(ctx, sync.group_fields(summary, group_tags(ctx, arn)), existing.get(arn.lower()))
    return {arn.lower() for arn in summaries}, cross_account_listed


def group_tags(ctx: SyncContext, arn: str) -> dict[str, str] | None:
    """The group's tags, or None (the stored tags are kept) when ListTags fails.

    A group shared through RAM may not let the consumer account read its tags: a denied ListTags there
    is a warning (counted), not an error that makes every run partial; the group is still mirrored.
    """
    try:
        return ctx.client.list_tags(arn)
    except AccessDeniedError as exc:
        if ctx.source.account_id and sync.parse_arn(arn).account != ctx.source.account_id:
            ctx.warn("tags_denied_shared", f"ListTags {arn}: {exc}")
        else:
            ctx.error(f"ListTags {arn}", str(exc))
    except AwsError as exc:
        ctx.error(f"ListTags {arn}", str(exc))
    return None


def describe_and_store_group(ctx: SyncContext, name_or_arn: str) -> ModelPackageGroup | None:
    """Describe one group (by name, or by ARN for a group of another account) and store it with its tags."""
    try:
        described = ctx.client.describe_group(name_or_arn)
        fields = sync.group_fields(described, None)
    except (AwsError, sync.RecordError) as exc:
        ctx.error(f"DescribeModelPackageGroup {name_or_arn}", str(exc))
        return None
    tags = group_tags(ctx, fields["arn"])  # its own try: a denied ListTags does not lose the group
    if tags is not None:
        fields["tags"] = dict(tags)
    existing = find_group_row(ctx, fields["arn"], fields["name"])
    group = store_group(ctx, fields, existing)
    ctx.groups[fields["name"]] = group
    return group


def find_group_row(ctx: SyncContext, arn: str, name: str) -> ModelPackageGroup | None:
    """This source's row for a group: by ARN in any case, else by name (a row made from a package record
    before its group could be described may hold an ARN spelled differently)."""
    return (
        ModelPackageGroup.objects.filter(arn__iexact=arn).first()
        or ModelPackageGroup.objects.filter(source=ctx.source, name=name).first()
    )


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
    """The row of the group a package record names (``group_name`` is the record's ModelPackageGroupName).
    Normally described and stored before (``ensure_groups``); if that failed, a row made from the record
    that the next group listing completes (found by ARN in any case, or by name, so never a duplicate)."""
    name = fields["group_name"]
    group = ctx.groups.get(name)
    if group is None:
        arn = sync.group_arn_for_package(fields["arn"], name)
        group = find_group_row(ctx, arn, name) or ModelPackageGroup.objects.create(
            source=ctx.source, name=name, arn=arn, owner_account=sync.parse_arn(arn).account
        )
        ctx.groups[name] = group
    return group


def ensure_groups(ctx: SyncContext, records: list[dict[str, Any]]) -> None:
    """Describe and store the groups of these package records that the context does not know yet, by the
    record's ``ModelPackageGroupName`` (by ARN for a group of another account)."""
    missing: dict[str, str] = {}
    for record in records:
        name, arn = record.get("ModelPackageGroupName"), record.get("ModelPackageArn")
        if not isinstance(name, str) or not name or name in ctx.groups or not isinstance(arn, str):
            continue
        try:
            account = sync.parse_arn(arn).account
        except sync.RecordError:
            continue
        own = not ctx.source.account_id or account == ctx.source.account_id
        missing.setdefault(name, name if own else sync.group_arn_for_package(arn, name))
    for _name, name_or_arn in sorted(missing.items()):
        # A failed describe is recorded; ``group_for`` then makes the row from the record itself.
        describe_and_store_group(ctx, name_or_arn)


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
        and g.arn.lower() not in seen_arns
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
